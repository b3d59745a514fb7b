"""The report document's shape (schema `picoclaw-vllm/report/v1`) as reports.document writes it
and every renderer reads it. Key order here is the order of the JSON (but for the results
columns of a step, see StepEntry).

Two kinds of value stay `object` on purpose, named for why:
  Unchecked  copied from sweep.json or doctor.json as it was: nothing checked its type
  Cell       a results.csv/parquet cell as read: validate.check_rows marks bad rows, but does
             not make every cell a number (a failed row is shown, not judged; text read from a
             CSV may stay text)
"""

from __future__ import annotations

from typing import Literal, TypedDict

from picoclaw_vllm.intervals import EstimateJson

Unchecked = object
Cell = object
# Gates.as_dict(): gate key (a latency key such as ttft_p95_ms, or a scalar gate) -> its value
GateConfig = dict[str, float | bool | None]


class ToolInfo(TypedDict):
    name: str
    version: str


class PlatformInfo(TypedDict):
    python: str
    system: str
    machine: str


class RunInfo(TypedDict):
    name: str
    sweep_schema: str | None  # run_data._read_manifest refused any other schema
    load_modes: list[str]
    steps_total: int
    steps_measured: int
    measured_duration_s_total: float | None
    measured_duration_s_per_step: list[float]
    warmup_s_per_step: list[float]
    requests_measured_total: int
    records_present: bool


class SettingEntry(TypedDict):
    """fingerprint.settings[]: one server setting the sweep tried."""

    setting_id: str
    label: str
    max_num_seqs: Cell
    tensor_parallel_size: Cell
    status: str  # ok | failed
    vllm_command: str | None


class Fingerprint(TypedDict):
    vllm_version: Unchecked
    model: Unchecked
    served_model_name: Unchecked
    max_model_len: Unchecked
    api_base: Unchecked
    launch: Unchecked
    gpus: Unchecked
    gpu_driver: Unchecked
    locust_version: Unchecked
    sweep_tool_version: Unchecked
    doctor_tool_version: Unchecked
    platform: Unchecked
    python: Unchecked
    date: str | None
    workload: str | None
    goodput_slo_ms: dict[str, Unchecked] | None
    locust_command: str | None
    turn_timeout_s: Unchecked
    vllm_args: str | None
    settings: list[SettingEntry]


class Verdict(TypedDict):
    passed: bool  # every gate passed (or was skipped): never true with an inconclusive gate
    outcome: str  # pass | fail | inconclusive
    headline: str
    target: str
    failed_gates: list[str]
    inconclusive_gates: list[str]
    skipped_gates: list[str]
    confidence: float  # of every interval a gate was judged on


class GateResultEntry(TypedDict):
    """gates.results[]: reports.verdict.GateResult as JSON."""

    gate_id: str
    title: str
    status: str  # pass | fail | inconclusive | skip
    explanation: str
    measured: float | None
    threshold: float | None
    unit: str
    step_id: str | None
    setting_id: str | None
    load: float | None
    rests_on: int | None
    warnings: list[str]
    interval: EstimateJson | None  # the figure with its interval (picoclaw_vllm.intervals)
    settle: str  # what would settle an inconclusive gate ("" otherwise)


class GatesSection(TypedDict):
    config: GateConfig
    results: list[GateResultEntry]


class NextStep(TypedDict):
    """recommendation.next_step: the next load step up and what it would cost."""

    step_id: str
    load: float | None
    output_throughput: float
    output_throughput_gain_pct: float | None
    broken_gates: list[str]
    summary: str


class ShortageEntry(TypedDict):
    """recommendation.capacity[].runs_out_first[]: reports.capacity.Shortage as JSON."""

    resource: str  # one of reports.capacity.RESOURCES
    load: float
    evidence: str


class CapacityEntry(TypedDict):
    """recommendation.capacity[]: reports.capacity.SettingCapacity as JSON."""

    setting_id: str
    label: str
    sessions: float
    highest_measured: float
    limit_measured: bool
    step_id: str | None
    first_failing_step_id: str | None
    first_failing_load: float | None
    broken_gates: list[str]
    runs_out_first: list[ShortageEntry]
    summary: str


class RecommendationEntry(TypedDict):
    """recommendation: reports.recommend.Recommendation as JSON."""

    found: bool
    summary: str
    details: list[str]
    setting_id: str | None
    max_num_seqs: Cell
    tensor_parallel_size: Cell
    step_id: str | None
    load_mode: str | None
    load: float | None
    goodput: float | None
    request_throughput: float | None
    output_throughput: float | None
    next_step: NextStep | None
    first_failing_gates: list[str]
    workload: str
    sessions: float | None
    capacity: list[CapacityEntry]


class DoctorCheck(TypedDict):
    id: Unchecked
    title: Unchecked
    status: Unchecked


class DoctorFinding(TypedDict):
    id: Unchecked
    severity: Unchecked
    message: Unchecked
    evidence: Unchecked
    remedy: Unchecked


class DoctorTarget(TypedDict):
    api_base: Unchecked
    model: Unchecked


class DoctorAbsent(TypedDict):
    """doctor, when the sweep has no doctor.json."""

    present: Literal[False]
    checks: list[DoctorCheck]
    findings: list[DoctorFinding]
    counts: dict[str, int]


class DoctorPresent(TypedDict):
    """doctor, from the sweep's doctor.json."""

    present: Literal[True]
    schema: Unchecked
    status: Unchecked
    started_at: Unchecked
    tool_version: Unchecked
    vllm_version: Unchecked
    target: DoctorTarget | None
    checks: list[DoctorCheck]
    counts: dict[str, int]  # check status -> how many checks have it
    findings: list[DoctorFinding]


DoctorSection = DoctorAbsent | DoctorPresent


class PositionTtft(TypedDict):
    """TTFT of the calls at one call (or turn) index of the agent workload."""

    ttft_ms_p50: float
    ttft_ms_p95: float
    calls: float


class RepeatsJson(TypedDict):
    """A repeated step: its runs, the requests they rest on and each figure's CV across them."""

    runs: int
    step_ids: list[str]
    requests: int
    cv: dict[str, float]


class StepJson(TypedDict):
    """One sweep step as reports.steps.Step.as_json writes it. At run time it holds EVERY
    results column first (run_layout.COLUMNS, then any extra column of results.csv), each a
    Cell; only the columns the readers name are declared here. A column chosen at run time is
    read with .get(column), typed object."""

    step_id: Cell
    setting_id: Cell
    max_num_seqs: Cell
    tensor_parallel_size: Cell
    status: str  # ok | failed | invalid (run_data made it text)
    failure_id: str | None  # run_data made it text (redacted) or None
    failure_message: str | None
    load_mode: Cell
    concurrency: Cell
    failed: Cell
    turns: Cell
    turns_timed_out: Cell
    tool_call_answers: Cell
    text_answers: Cell
    server_preemptions: Cell
    workload: Cell
    # derived by reports.steps.Step.as_json
    load: float | None
    error_rate_pct: float | None
    requests_measured: int
    itl_gaps: int | None
    tpot_requests: int | None
    error_reasons: dict[str, int]
    prompt_tokens_per_s: float | None
    ttft_by_call_index: dict[str, PositionTtft]
    ttft_by_turn_index: dict[str, PositionTtft]
    warnings: list[str]
    repeats: RepeatsJson | None  # a repeated step (results.csv `repeat`); else None


class StepEntry(StepJson):
    """steps[]: the step and, added by reports.document, the gates it misses (None for a step
    that was not measured)."""

    gates_missed: list[str] | None  # failed gates
    gates_inconclusive: list[str] | None


class FailedSetting(TypedDict):
    """failed_settings[]: a setting that did not start, or a step whose load failed."""

    setting_id: str
    step_id: str
    label: str
    cause: str
    failure_id: str | None
    failure_message: str | None
    log_excerpt: list[str]


class ReportDocument(TypedDict):
    schema: str
    generated_at: str
    tool: ToolInfo
    platform: PlatformInfo
    run: RunInfo
    fingerprint: Fingerprint
    metric_definitions: dict[str, str]
    verdict: Verdict
    gates: GatesSection
    recommendation: RecommendationEntry
    doctor: DoctorSection
    steps: list[StepEntry]
    failed_settings: list[FailedSetting]
    warnings: list[str]
