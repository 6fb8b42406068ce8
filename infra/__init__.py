"""NovaCron's AWS CDK app, derived from the wiring declaration in ``novacron.wiring``."""

import os

# jsii prints an end-of-life banner on Node 20 (the development machines' version) on every synth.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
