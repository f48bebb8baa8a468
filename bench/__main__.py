"""``python -m bench``: the same as ``python bench/run.py`` (run from the repository root)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import main  # noqa: E402  (needs the sys.path entry above)

sys.exit(main())
