"""Configuration: dataclass schemas, validation, and the Hydra glue every stage uses."""

from omegaconf import OmegaConf

from plumbing.config.validate import ConfigError, check_tree, validate


def _asset(name: str) -> str:
    from plumbing.shipped import asset_path

    return asset_path(name)


# ${ralign.asset:PACKAGE/PATH} → absolute path of a data file a package ships (plumbing.shipped).
OmegaConf.register_new_resolver("ralign.asset", _asset, replace=True)

__all__ = ["ConfigError", "check_tree", "validate"]
