"""What the three DELICAITE modules share inside Slicer (support.py) and the first-use install of their
Python packages (dependencies.py).

A package, not files beside DELICAITE.py: Slicer's module factory takes every ``.py`` file in a module
folder for a module and logs "class … was not found" for each helper file at every start-up.
"""
