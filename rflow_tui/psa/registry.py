"""Adapters by name: the two shipped ones, and any a third party registers under the
``rflow.psa_adapters`` entry-point group (``name = "package.module:Class.from_settings"``,
called with the ``[psa]`` settings and the environment) for Autotask, HaloPSA and the like.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from rflow_tui.plugins import load_target, registered
from rflow_tui.psa.base import PsaAdapter

ENTRY_POINT_GROUP = "rflow.psa_adapters"
BUILTIN = {
    "connectwise": "rflow_tui.psa.connectwise:ConnectWiseAdapter.from_settings",
    "zendesk": "rflow_tui.psa.zendesk:ZendeskAdapter.from_settings",
}


class NoPsaConfigured(Exception):
    """The desk has no ``[psa] kind`` (or an unknown one)."""


def available_adapters() -> dict[str, str]:
    """Entry points of the group, with the shipped ones present even if the metadata is stale."""
    return registered(BUILTIN, ENTRY_POINT_GROUP)


def make_adapter(settings: Any, environ: Mapping[str, str] | None = None) -> PsaAdapter:
    """Build the adapter ``settings.kind`` names (imports it, and httpx, only now)."""
    if not settings.kind:
        raise NoPsaConfigured("no PSA is configured: set kind in the [psa] table of config.toml")
    target = available_adapters().get(settings.kind)
    if target is None:
        known = ", ".join(sorted(available_adapters()))
        raise NoPsaConfigured(f"no PSA adapter named '{settings.kind}' (known: {known})")
    adapter: PsaAdapter = load_target(target)(settings, os.environ if environ is None else environ)
    return adapter
