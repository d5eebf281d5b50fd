from fmsnb.cli import main

raise SystemExit(main())
