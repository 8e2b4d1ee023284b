from seqembed.cli import main

raise SystemExit(main())
