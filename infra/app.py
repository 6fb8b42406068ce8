"""Build the NovaCron CDK app: ``python -m infra.app`` (``cdk synth`` runs exactly this)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from aws_cdk import App, Environment

from infra.bundling import REPO_ROOT
from infra.nag import add_nag_checks
from infra.settings import Settings
from infra.stack import NovaCronStack
from novacron.wiring import WIRING, Wiring

CDK_JSON = REPO_ROOT / "cdk.json"


def cdk_json_context() -> dict[str, Any]:
    """The ``context`` of ``cdk.json`` (feature flags and defaults), for synths outside the CLI.

    The CLI passes this context itself; when the app runs under the CLI its values win anyway.
    """
    if not CDK_JSON.is_file():
        return {}
    context = json.loads(CDK_JSON.read_text()).get("context", {})
    assert isinstance(context, dict)
    return context


def build_app(
    *,
    outdir: str | Path | None = None,
    context: dict[str, Any] | None = None,
    wiring: Wiring = WIRING,
) -> tuple[App, NovaCronStack]:
    """The app with the NovaCron stack and the cdk-nag AwsSolutions checks."""
    app = App(
        outdir=str(outdir) if outdir is not None else None,
        context={**cdk_json_context(), **(context or {})},
    )
    settings = Settings.from_context(app.node)
    account, region = os.environ.get("CDK_DEFAULT_ACCOUNT"), os.environ.get("CDK_DEFAULT_REGION")
    env = Environment(account=account, region=region) if account and region else None
    stack = NovaCronStack(
        app,
        settings.stack_name,
        wiring=wiring,
        settings=settings,
        env=env,
        description="NovaCron: serverless monitoring (Prometheus remote write in, PromQL out)",
    )
    add_nag_checks(app)
    return app, stack


def main() -> None:
    """Entry point of ``cdk.json``'s ``app``."""
    app, _ = build_app()
    app.synth()


if __name__ == "__main__":
    main()
