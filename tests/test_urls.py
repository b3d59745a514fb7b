"""PicoClaw's api_base and the server root: one set of URL rules for the doctor and the load."""

from __future__ import annotations

import pytest

from loadtests.request_builder import api_path
from picoclaw_vllm import urls


@pytest.mark.parametrize(
    ("base", "without", "root"),
    [
        ("http://h:8000/v1", "http://h:8000", "http://h:8000"),
        ("http://h:8000/v1/", "http://h:8000", "http://h:8000"),
        ("http://h:8000", "http://h:8000", "http://h:8000"),
        # a proxy prefix without /v1: the load keeps it, the doctor looks at the host root
        ("http://p/llm", "http://p/llm", "http://p"),
        ("http://p/llm/v1", "http://p/llm", "http://p/llm"),
        ("localhost:8000/v1", "localhost:8000", "localhost:8000"),
        # a query stays whole (it may carry a gateway's parameters)
        ("http://h/v1?x=1", "http://h?x=1", "http://h?x=1"),
        ("http://h/v1x", "http://h/v1x", "http://h"),
    ],
)
def test_v1_is_stripped_once_and_only_as_a_path_segment(base: str, without: str, root: str) -> None:
    assert urls.without_v1(base) == without
    assert urls.root(base) == root


def test_the_load_appends_v1_only_when_api_base_lacks_it() -> None:
    assert api_path("http://h:8000/v1", "chat") == "/chat/completions"
    assert api_path("http://h:8000/v1?x=1", "chat") == "/chat/completions"
    assert api_path("http://h:8000", "completions") == "/v1/completions"
