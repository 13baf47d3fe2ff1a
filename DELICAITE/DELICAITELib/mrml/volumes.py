"""Volume nodes <-> SimpleITK images, voxels and geometry exact.

SimpleITK images are in LPS; MRML volume nodes in RAS. Flipping the first two axes of the origin and
of the direction columns converts one into the other; voxel values are copied unchanged (same dtype).
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
import vtk
from vtk.util import numpy_support

from ..errors import ImageError

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


def volume_node_from_image(scene, image: sitk.Image, name: str, labelmap: bool = False):
    """A new scalar (or label map) volume node in ``scene`` holding ``image``, with a display node."""
    class_name = "vtkMRMLLabelMapVolumeNode" if labelmap else "vtkMRMLScalarVolumeNode"
    node = scene.AddNewNodeByClass(class_name, name)
    update_volume_node(node, image)
    node.CreateDefaultDisplayNodes()
    if not labelmap:
        display = node.GetDisplayNode()
        display.AutoWindowLevelOff()
        display.SetWindowLevel(400, 40)  # abdominal CT window
    return node


def update_volume_node(node, image: sitk.Image) -> None:
    """Replace the voxels and geometry of ``node`` by those of ``image`` (3-D, one component)."""
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise ImageError("only 3-D single-component images can become volume nodes")
    array = sitk.GetArrayViewFromImage(image)  # (z, y, x), x fastest: VTK's order
    image_data = vtk.vtkImageData()
    image_data.SetDimensions(image.GetSize())
    scalars = numpy_support.numpy_to_vtk(np.ascontiguousarray(array).ravel(), deep=True)
    image_data.GetPointData().SetScalars(scalars)
    node.SetOrigin(*(LPS_TO_RAS @ np.asarray(image.GetOrigin())))
    node.SetSpacing(*image.GetSpacing())
    direction = LPS_TO_RAS @ np.asarray(image.GetDirection()).reshape(3, 3)
    node.SetIJKToRASDirections(vtk_matrix3(direction))
    node.SetAndObserveImageData(image_data)


def image_from_volume_node(node) -> sitk.Image:
    """The voxels of a scalar volume node as a SimpleITK image in LPS (a copy)."""
    if node is None or node.GetImageData() is None:
        raise ImageError("the volume node holds no image; load or select a volume first")
    if node.GetParentTransformNode() is not None:
        raise ImageError(f"volume {node.GetName()!r} is under a transform; harden the transform first "
                         "(Data module: right-click > Harden transform)")
    image_data = node.GetImageData()
    if image_data.GetNumberOfScalarComponents() != 1:
        raise ImageError(f"volume {node.GetName()!r} has {image_data.GetNumberOfScalarComponents()} "
                         "components; a CT has one")
    nx, ny, nz = image_data.GetDimensions()
    array = numpy_support.vtk_to_numpy(image_data.GetPointData().GetScalars()).reshape(nz, ny, nx)
    image = sitk.GetImageFromArray(array.copy())
    image.SetSpacing(node.GetSpacing())
    image.SetOrigin(tuple(LPS_TO_RAS @ np.asarray(node.GetOrigin())))
    directions = vtk.vtkMatrix4x4()
    node.GetIJKToRASDirectionMatrix(directions)
    ras = np.array([[directions.GetElement(r, c) for c in range(3)] for r in range(3)])
    image.SetDirection(tuple((LPS_TO_RAS @ ras).ravel()))
    return image


def vtk_matrix3(matrix: np.ndarray) -> list[list[float]]:
    """A 3x3 array as the nested lists `SetIJKToRASDirections` takes."""
    return [[float(v) for v in row] for row in matrix]


def ras_to_ijk(node, ras) -> np.ndarray:
    """Continuous voxel index (i, j, k) of a RAS point in ``node``."""
    matrix = vtk.vtkMatrix4x4()
    node.GetRASToIJKMatrix(matrix)
    return np.array(matrix.MultiplyPoint((*ras, 1.0))[:3])


def ijk_to_ras(node, ijk) -> np.ndarray:
    """RAS position of voxel index (i, j, k) in ``node``."""
    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    return np.array(matrix.MultiplyPoint((*(float(v) for v in ijk), 1.0))[:3])

