"""Packages that load their names lazily (`attnsteer.lazy`) give the named objects, never a submodule of the
same name, whatever was imported before (a submodule import sets an attribute on its package)."""

from __future__ import annotations

import importlib
import pkgutil
import types

import pytest

LAZY_PACKAGES = ["attnsteer.steering", "attnsteer.evaluation", "attnsteer.context", "attnsteer.models"]


@pytest.mark.parametrize("name", LAZY_PACKAGES)
def test_every_export_is_its_object_after_all_submodules_are_imported(name):
    package = importlib.import_module(name)
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{name}.{module.name}")
    assert sorted(package.__all__) == sorted(package._EXPORTS)
    for export in package.__all__:
        value = getattr(package, export)
        assert not isinstance(value, types.ModuleType), f"{name}.{export} is a module"
        assert value is getattr(importlib.import_module(package._EXPORTS[export]), export)
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        package.nope  # noqa: B018
