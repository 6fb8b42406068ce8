"""Shared fixtures for the CDK synthesis tests: the app is synthesized once per session."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from aws_cdk.assertions import Template

from infra.app import build_app
from infra.stack import NovaCronStack


@dataclass
class Synthesized:
    """One synthesized cloud assembly and handy views of it."""

    stack: NovaCronStack
    outdir: Path
    template: Template
    resources: dict[str, dict[str, Any]]
    assets: dict[str, Any]

    def of_type(self, cfn_type: str) -> dict[str, dict[str, Any]]:
        """Resources of one CloudFormation type, by logical id."""
        return {k: v for k, v in self.resources.items() if v["Type"] == cfn_type}

    def logical_id(self, construct: Any) -> str:
        """The logical id of an L2 construct's default CloudFormation resource."""
        return str(self.stack.resolve(self.stack.get_logical_id(construct.node.default_child)))

    def asset_dir(self, s3_key: Any) -> Path:
        """The staged directory of the asset whose object key is ``s3_key`` (``<hash>.zip``)."""
        asset_hash = str(s3_key).removesuffix(".zip")
        return self.outdir / self.assets["files"][asset_hash]["source"]["path"]


def synthesize(outdir: Path, **kwargs: Any) -> Synthesized:
    """Build and synthesize the app into ``outdir``; cdk-nag violations make this raise."""
    app, stack = build_app(outdir=outdir, **kwargs)
    app.synth()
    template_json = json.loads((outdir / stack.template_file).read_text())
    assets = json.loads((outdir / f"{stack.artifact_id}.assets.json").read_text())
    return Synthesized(
        stack=stack,
        outdir=outdir,
        template=Template.from_json(template_json),
        resources=template_json["Resources"],
        assets=assets,
    )


@pytest.fixture(scope="session")
def synthesize_app() -> Callable[..., Synthesized]:
    """``synthesize(outdir, wiring=..., context=...)`` for tests that need another app."""
    return synthesize


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The default app (the real wiring, cdk.json context), synthesized once."""
    return synthesize(tmp_path_factory.mktemp("cdk-out"))
