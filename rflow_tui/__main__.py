from rflow_tui.cli import main

raise SystemExit(main())
