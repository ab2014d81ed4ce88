"""The mapping specs shipped in `mappings/defaults/`, one YAML file per name."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

from mappings.spec import MappingSpecError, load_spec_text

#: Default name -> (canonical object, direction).
DEFAULTS: dict[str, tuple[str, str]] = {
    "salesforce_account_in": ("vendor", "in"),
    "salesforce_account_out": ("compliance", "out"),
    "salesforce_service_resource_in": ("vendor", "in"),
    "salesforce_service_resource_out": ("compliance", "out"),
    "business_central_vendor_in": ("vendor", "in"),
    "business_central_vendor_out": ("compliance", "out"),
    "dispatch_work_order_in": ("work_order", "in"),
    "dispatch_provider_in": ("vendor", "in"),
    "dispatch_provider_out": ("compliance", "out"),
    "csv_vendor_in": ("vendor", "in"),
    "csv_certificate_in": ("certificate", "in"),
}


@cache
def _text(name: str) -> str:
    return resources.files("mappings").joinpath("defaults", f"{name}.yaml").read_text("utf-8")


def default_spec(name: str) -> dict[str, Any]:
    """The shipped spec `name` (a fresh dict each call); MappingSpecError if there is none."""
    if name not in DEFAULTS:
        known = ", ".join(DEFAULTS)
        raise MappingSpecError({"default": [f"No default mapping {name!r}; known: {known}."]})
    return load_spec_text(_text(name))
