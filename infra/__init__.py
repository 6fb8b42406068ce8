"""NovaCron's AWS CDK app, derived from the wiring declaration in ``novacron.wiring``."""

import importlib.util
import os
import sys
from pathlib import Path

# jsii prints an end-of-life banner on Node 20 (the development machines' version) on every synth.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

# The app reads the wiring from the novacron package; work from a checkout where it is not installed.
if importlib.util.find_spec("novacron") is None:
    sys.path.append(str(Path(__file__).resolve().parent.parent / "layers"))
