"""Build the reference commit's _flowlogs.pyx (in the current folder) for ab.py."""
import pathlib
from setuptools import setup, Extension
from Cython.Build import cythonize
import numpy
SRC = str(pathlib.Path(__file__).resolve().parents[2] / "src")
setup(ext_modules=cythonize([Extension("_flowlogs", ["_flowlogs.pyx"], include_dirs=[numpy.get_include(), SRC], extra_compile_args=["-O3"])], include_path=[SRC], language_level=3), script_args=["build_ext", "--inplace"])
