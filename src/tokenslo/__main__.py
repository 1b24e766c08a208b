from tokenslo.cli import main

raise SystemExit(main())
