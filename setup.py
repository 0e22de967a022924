"""Packaging of fiware-glancesync (pip install .)."""

import os
import re

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def read(name):
    with open(os.path.join(HERE, name), encoding="utf-8") as stream:
        return stream.read()


def requirements(name):
    return [line.strip() for line in read(name).splitlines() if line.strip() and not line.startswith("#")]


VERSION = re.search(r'__version__ = "([^"]+)"', read("fiwareglancesync/__init__.py")).group(1)

setup(
    name="fiware-glancesync",
    version=VERSION,
    description="Synchronise OpenStack Glance images from a master region to the other regions of a federation",
    long_description=read("README.rst"),
    long_description_content_type="text/x-rst",
    license="Apache-2.0",
    python_requires=">=3.11",
    packages=find_packages(include=["fiwareglancesync", "fiwareglancesync.*"]),
    include_package_data=True,
    package_data={"fiwareglancesync": ["demo/*", "demo/*/*", "app/migrations/*", "app/migrations/*/*", "app/etc/*",
                                       "app/templates/*", "app/static/*"]},
    install_requires=requirements("requirements.txt"),
    entry_points={
        "console_scripts": [
            "sync.py = fiwareglancesync.sync:console_main",
            "glancesync = fiwareglancesync.sync:console_main",
            "glancesync-mock = fiwareglancesync.glancesync.facades.mock:main",
            "glancesync-server = fiwareglancesync.run:main",
            "glancesync-config = fiwareglancesync.config_command:main",
        ],
    },
    classifiers=[
        "License :: OSI Approved :: Apache Software License",
        "Programming Language :: Python :: 3",
        "Environment :: OpenStack",
    ],
)
