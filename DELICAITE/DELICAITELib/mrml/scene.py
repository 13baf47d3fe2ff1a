"""MRML scenes outside the application: converter rules, saving and reloading.

Inside Slicer the application registers the segmentation converter rules at start-up; with the
`slicer-core` wheel nobody does, so `new_scene` registers them (once per process) before use.
"""

from __future__ import annotations

from pathlib import Path

import slicer

from ..errors import DelicaiteError

_CONVERTER_RULES = (
    "vtkBinaryLabelmapToClosedSurfaceConversionRule",
    "vtkClosedSurfaceToBinaryLabelmapConversionRule",
    "vtkClosedSurfaceToFractionalLabelmapConversionRule",
    "vtkFractionalLabelmapToClosedSurfaceConversionRule",
)


def register_segmentation_converters() -> None:
    """Register the standard segmentation converter rules unless they are registered already."""
    factory = slicer.vtkSegmentationConverterFactory.GetInstance()
    rules = factory.GetConverterRules()
    present = {rules[i].GetClassName() for i in range(len(rules))} if rules else set()
    for name in _CONVERTER_RULES:
        if name not in present and hasattr(slicer, name):
            factory.RegisterConverterRule(getattr(slicer, name)())


def new_scene() -> "slicer.vtkMRMLScene":
    """An empty scene ready for volumes, segmentations, tables, charts and markups."""
    register_segmentation_converters()
    scene = slicer.vtkMRMLScene()
    # Markups and tables need their node classes registered in a scene made outside the application.
    for cls in ("vtkMRMLMarkupsFiducialNode", "vtkMRMLMarkupsFiducialDisplayNode",
                "vtkMRMLMarkupsFiducialStorageNode", "vtkMRMLMarkupsJsonStorageNode",
                "vtkMRMLPlotChartNode", "vtkMRMLPlotSeriesNode", "vtkMRMLTableNode", "vtkMRMLTableStorageNode"):
        if hasattr(slicer, cls) and not scene.IsNodeClassRegistered(cls):
            scene.RegisterNodeClass(getattr(slicer, cls)())
    # The default colour tables (label maps look theirs up by ID), as the application adds them.
    colours = slicer.vtkMRMLColorLogic()
    colours.SetMRMLScene(scene)
    colours.SetMRMLScene(None)
    return scene


def save_scene(scene, path) -> Path:
    """Write ``scene`` as ``path`` (.mrml) with every storable node's data in files beside it."""
    path = Path(path)
    if path.suffix != ".mrml":
        raise DelicaiteError(f"save the scene as a .mrml file, not {path.name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    for node in _nodes(scene, "vtkMRMLStorableNode"):
        if not node.GetSaveWithScene():  # the default colour tables: every scene has them
            continue
        storage = node.GetStorageNode()
        if storage is None:
            if not node.AddDefaultStorageNode():
                continue
            storage = node.GetStorageNode()
        extension = storage.GetDefaultWriteFileExtension()
        storage.SetFileName(str(path.parent / f"{_safe(node.GetName())}-{node.GetID()}.{extension}"))
        if not storage.WriteData(node):
            raise DelicaiteError(f"could not write {node.GetName()!r} to {storage.GetFileName()}")
    scene.SetRootDirectory(str(path.parent))
    scene.SetURL(str(path))
    if not scene.Commit():
        raise DelicaiteError(f"could not write the scene to {path}")
    return path


def load_scene(path) -> "slicer.vtkMRMLScene":
    """A new scene read from a .mrml file written by `save_scene` (node data read from its files)."""
    path = Path(path)
    if not path.is_file():
        raise DelicaiteError(f"no scene file at {path}")
    scene = new_scene()
    scene.SetURL(str(path))
    if not scene.Connect():
        raise DelicaiteError(f"could not read the scene {path}")
    return scene


def _nodes(scene, class_name: str) -> list:
    collection = scene.GetNodesByClass(class_name)
    return [collection.GetItemAsObject(i) for i in range(collection.GetNumberOfItems())]


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name) or "node"
