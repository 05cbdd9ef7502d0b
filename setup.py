"""What pyproject.toml cannot say: the code packages are discovered, and the recipes in
``configs/<app>/*.yaml`` ship as package data of ``mlref_recipes`` (``mlref_recipes.<app>``
is ``configs/<app>/``), which ``shared.config.recipes_dir`` finds after a wheel or an editable install.
Everything else about the distribution is in pyproject.toml."""
from pathlib import Path

from setuptools import find_namespace_packages, setup

# namespace discovery, as pyproject's packages.find did: a folder without __init__.py still ships
CODE = find_namespace_packages(include=["shared*", "nlp_app*", "tabular_mining*", "vision_app*", "recsys_app*"],
                               exclude=["*__pycache__*"])
RECIPES = sorted(f"mlref_recipes.{d.name}" for d in Path(__file__).parent.joinpath("configs").iterdir()
                 if d.is_dir() and any(d.glob("*.yaml")))

setup(
    packages=[*CODE, "mlref_recipes", *RECIPES],
    package_dir={"mlref_recipes": "configs"},
    package_data={**{name: ["*.yaml"] for name in RECIPES},
                  "shared.serving.pages": ["*.html", "*.css", "*.js"]},  # the demo page's assets
)
