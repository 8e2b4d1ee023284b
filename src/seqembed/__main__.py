from seqembed.cli.main import main

raise SystemExit(main())
