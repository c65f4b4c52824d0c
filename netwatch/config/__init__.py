"""The inventory (validated YAML, resolved into frozen objects) and process settings.

``load_inventory(path)`` is what the daemon and CLI call; ``check_inventory(path)`` lists problems
without raising; ``inventory_json_schema()`` documents the file format.
"""

from __future__ import annotations

from typing import Any

from netwatch.config.document import InventoryDocument
from netwatch.config.inventory import Inventory
from netwatch.config.loader import check_inventory, load_inventory
from netwatch.config.settings import Settings


def inventory_json_schema() -> dict[str, Any]:
    """JSON Schema of an inventory file (the main one; included files take its sites, devices, maintenance)."""
    schema = InventoryDocument.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "netwatch inventory"
    return schema


__all__ = ["Inventory", "Settings", "check_inventory", "inventory_json_schema", "load_inventory"]
