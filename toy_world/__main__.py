"""``python -m toy_world --out DIR``: write the toy world's data files."""

from toy_world import main

raise SystemExit(main())
