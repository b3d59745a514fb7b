from picoclaw_vllm.cli import main

raise SystemExit(main())
