from chronos_distill.cli import main

raise SystemExit(main())
