"""Reading CT and label maps, checks on bad input, and loading a two-phase case."""

import os

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from conftest import shared_path
from DELICAITELib.errors import ImageError, MaskError
from DELICAITELib.io import check_ct, check_label, load_case, read_image, read_label

AP_SERIES = "series-4-recon2-liver-3-phase"
VP_SERIES = "series-103-liver-3-phase"


def synthetic_ct(size=(40, 40, 10), spacing=(1.0, 1.0, 2.0), origin=(0.0, 0.0, 0.0), fill=None):
    """Small CT-like volume: air (−1000 HU) around a 40 HU block; ``fill(x, y, z)`` in mm overrides values."""
    image = sitk.Image(list(size), sitk.sitkFloat32)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    pixels = np.full(size[::-1], -1000.0, dtype=np.float32)
    pixels[:, size[1] // 4 : -size[1] // 4, size[0] // 4 : -size[0] // 4] = 40.0
    if fill is not None:
        axes = (o + s * np.arange(n) for o, s, n in zip(origin[::-1], spacing[::-1], size[::-1]))
        z, y, x = np.meshgrid(*axes, indexing="ij")
        pixels = fill(x, y, z).astype(np.float32)
    result = sitk.GetImageFromArray(pixels)
    result.CopyInformation(image)
    return result


def assert_one_line(error, *fragments):
    message = str(error.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


# --- real data -----------------------------------------------------------------------------------


def test_ircadb17_ct_geometry_and_slice_order(ircadb17_dir, ircadb17_image):
    image = ircadb17_image
    assert image.GetSize() == (512, 512, 119)
    assert image.GetPixelID() == sitk.sitkFloat32
    assert np.allclose(image.GetSpacing(), (0.743, 0.743, 1.6), atol=1e-3)
    # Independent order: each file's ImagePositionPatient z, compared with the volume's slice z and content.
    folder = ircadb17_dir / "PATIENT_DICOM"
    headers = {name: pydicom.dcmread(folder / name, stop_before_pixels=True) for name in os.listdir(folder)}
    by_z = sorted(headers, key=lambda name: float(headers[name].ImagePositionPatient[2]))
    slice_z = [image.TransformIndexToPhysicalPoint((0, 0, k))[2] for k in range(image.GetSize()[2])]
    assert np.all(np.diff(slice_z) > 0)
    assert np.allclose(slice_z, [float(headers[n].ImagePositionPatient[2]) for n in by_z], atol=1e-3)
    pixels = sitk.GetArrayViewFromImage(image)
    for k in (0, 60, 118):
        ds = pydicom.dcmread(folder / by_z[k])
        hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        assert np.array_equal(pixels[k], hu)


def test_ircadb17_label_has_liver_and_both_tumours(ircadb17_dir, ircadb17_image, ircadb17_label):
    label = ircadb17_label
    assert label.GetPixelID() == sitk.sitkUInt8
    assert label.GetSize() == ircadb17_image.GetSize()
    assert label.GetOrigin() == ircadb17_image.GetOrigin()
    counts = np.bincount(sitk.GetArrayViewFromImage(label).ravel(), minlength=3)
    assert counts.size == 3 and counts[1] > 0 and counts[2] > 0
    voxel_ml = np.prod(label.GetSpacing()) / 1000.0
    # README: livertumor1 85.6 mL + livertumor2 78.6 mL (disjoint).
    assert counts[2] * voxel_ml == pytest.approx(85.6 + 78.6, rel=0.01)
    # MASKS_DICOM itself is accepted too; compare a cropped block to keep it quick.
    again = read_label(ircadb17_dir / "MASKS_DICOM")
    assert np.array_equal(sitk.GetArrayViewFromImage(again)[80:100], sitk.GetArrayViewFromImage(label)[80:100])


def test_hcc009_two_phases_load_on_one_grid(hcc009_dir):
    case = load_case(hcc009_dir / AP_SERIES, hcc009_dir / VP_SERIES)
    print("HCC_009 alignment:", case.alignment)
    report = case.alignment
    assert report["same_grid"] is True and report["vp_resampled"] is False and report["single_phase"] is False
    assert report["overlap_fraction"] == 1.0 and report["origin_offset_mm"] == 0.0
    assert report["spacing_ap"] == pytest.approx((0.742188, 0.742188, 2.5))
    assert report["spacing_vp"] == pytest.approx(report["spacing_ap"])
    assert case.ap.GetSize() == case.vp.GetSize() == (512, 512, 69)
    assert case.label is None
    # Different phases, so different contrast: not the same voxels.
    assert not np.array_equal(sitk.GetArrayViewFromImage(case.ap), sitk.GetArrayViewFromImage(case.vp))


def test_folder_with_two_series_is_refused(hcc009_dir, tmp_path):
    for series in (AP_SERIES, VP_SERIES):
        for name in sorted(os.listdir(hcc009_dir / series))[:3]:
            (tmp_path / f"{series[:10]}-{name}").symlink_to(hcc009_dir / series / name)
    with pytest.raises(ImageError) as error:
        read_image(tmp_path)
    assert_one_line(error, "holds 2 DICOM series", "Recon 2: LIVER 3 PHASE", "(3 files)", "pass one series folder")


def test_series_with_a_missing_slice_is_refused_naming_the_gap(hcc009_dir, tmp_path, monkeypatch):
    for name in ("1-01.dcm", "1-02.dcm", "1-04.dcm", "1-05.dcm", "1-06.dcm"):  # 1-03 left out
        (tmp_path / name).symlink_to(hcc009_dir / VP_SERIES / name)
    with pytest.raises(ImageError) as error:
        read_image(tmp_path)
    assert_one_line(error, "has a slice gap: 5.00 mm between", "1-02.dcm", "1-04.dcm", "2.50 mm apart",
                    "--allow-slice-gaps")
    from DELICAITELib.io import dicom

    monkeypatch.setitem(dicom._ALLOW_GAPS, "value", True)  # what `delicaite --allow-slice-gaps` sets
    with pytest.warns(UserWarning, match=r"read with a slice gap \(5.00 mm between"):
        image = read_image(tmp_path)
    assert image.GetSize() == (512, 512, 5)


@pytest.mark.parametrize("damage", ["truncated", "empty", "random bytes"])
def test_series_with_a_damaged_slice_is_refused_naming_the_file(hcc009_dir, tmp_path, damage):
    """GDCM leaves a slice it cannot read out of the series; the gap it leaves names that file."""
    for name in ("1-01.dcm", "1-02.dcm", "1-04.dcm", "1-05.dcm"):
        (tmp_path / name).symlink_to(hcc009_dir / VP_SERIES / name)
    original = (hcc009_dir / VP_SERIES / "1-03.dcm").read_bytes()
    damaged = {"truncated": original[: len(original) // 3], "empty": b"",
               "random bytes": np.random.default_rng(3).bytes(len(original))}[damage]
    (tmp_path / "1-03.dcm").write_bytes(damaged)
    with pytest.raises(ImageError) as error:
        read_image(tmp_path)
    assert_one_line(error, "slice gap: 5.00 mm between", "1-02.dcm", "left out as unreadable: 1-03.dcm")


def test_series_of_two_acquisitions_at_the_same_positions_reads_one(tmp_path):
    # HCC_002's arterial series holds two acquisitions (AcquisitionNumber 1 and 2) at the same 109 positions;
    # read as one they made a 218-slice volume with the body twice along z
    folder = shared_path("hcc-tace-seg", "HCC_002", "series-4-recon2-liver-3-phase-ap")
    for name in [f"{a}-{i:03d}.dcm" for a in (1, 2) for i in range(40, 46)]:
        (tmp_path / name).symlink_to(folder / name)
    with pytest.warns(UserWarning, match=r"2 acquisitions at the same slice positions .* read acquisition 1 \(6 slices\)"):
        image = read_image(tmp_path)
    assert image.GetSize() == (512, 512, 6)
    assert image.GetSpacing()[2] == pytest.approx(2.5)
    first = pydicom.dcmread(folder / "1-040.dcm")
    z = int(np.argmin([abs(image.TransformIndexToPhysicalPoint((0, 0, k))[2] - float(first.ImagePositionPatient[2]))
                       for k in range(6)]))
    expected = first.pixel_array * float(first.RescaleSlope) + float(first.RescaleIntercept)
    assert np.array_equal(sitk.GetArrayViewFromImage(image)[z], expected)


def test_duplicated_slice_without_an_acquisition_number_is_refused(hcc009_dir, tmp_path):
    for name in ("1-01.dcm", "1-02.dcm", "1-03.dcm"):
        (tmp_path / name).symlink_to(hcc009_dir / VP_SERIES / name)
    copy = pydicom.dcmread(hcc009_dir / VP_SERIES / "1-02.dcm")
    copy.SOPInstanceUID = pydicom.uid.generate_uid()
    copy.save_as(tmp_path / "copy-of-1-02.dcm")
    with pytest.raises(ImageError) as error:
        read_image(tmp_path)
    assert_one_line(error, "1 slice(s) at a position another slice already holds", "remove the duplicated files")


def test_folders_without_one_ct_series_are_refused(ircadb17_dir):
    with pytest.raises(ImageError) as error:
        read_image(ircadb17_dir)  # the patient folder, not its PATIENT_DICOM
    assert_one_line(error, "no DICOM series found", "its subfolders are MASKS_DICOM, PATIENT_DICOM")
    with pytest.raises(ImageError) as error:
        read_image(shared_path("dcmqi-ct3slice"))  # holds only a DICOM-SEG file besides ct/
    assert_one_line(error, "holds a DICOM SEG object, not image slices")


# --- bad input -----------------------------------------------------------------------------------


def test_two_dimensional_image_is_refused(tmp_path):
    path = tmp_path / "slice.nii.gz"
    sitk.WriteImage(sitk.Image([64, 64], sitk.sitkInt16), str(path))
    with pytest.raises(ImageError) as error:
        read_image(path)
    assert_one_line(error, "slice.nii.gz is 2-D", "expected a 3-D CT volume")
    with pytest.raises(ImageError) as error:
        check_ct(synthetic_ct(size=(40, 40, 1)))
    assert_one_line(error, "single slice")


def test_mr_like_intensities_are_refused(tmp_path):
    path = tmp_path / "mr.nrrd"
    sitk.WriteImage(synthetic_ct(fill=lambda x, y, z: 1200.0 * x / x.max()), str(path))
    with pytest.raises(ImageError) as error:
        read_image(path)
    assert_one_line(error, "mr.nrrd does not look like CT: intensities 0..1200", "air near −1000")


def test_implausible_spacing_and_non_axial_are_refused():
    with pytest.raises(ImageError) as error:
        check_ct(synthetic_ct(spacing=(0.001, 0.001, 0.002)), name="CT")
    assert_one_line(error, "CT has implausible voxel spacing")
    sagittal = synthetic_ct()
    sagittal.SetDirection((0, 0, 1, 1, 0, 0, 0, 1, 0))
    with pytest.raises(ImageError) as error:
        check_ct(sagittal)
    assert_one_line(error, "is not axial")


def test_unsupported_or_missing_files_are_refused(tmp_path):
    with pytest.raises(ImageError) as error:
        read_image(tmp_path / "nothing.nii.gz")
    assert_one_line(error, "file not found")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ImageError) as error:
        read_image(tmp_path / "notes.txt")
    assert_one_line(error, "unsupported file type: notes.txt")
    with pytest.raises(ImageError) as error:
        read_image(tmp_path)
    assert_one_line(error, "no DICOM series found")


def test_mask_with_value_7_is_refused(tmp_path):
    pixels = np.zeros((10, 40, 40), dtype=np.uint8)
    pixels[4, 10:20, 10:20] = 1
    pixels[5, 12:15, 12:15] = 7
    path = tmp_path / "mask.nrrd"
    sitk.WriteImage(sitk.GetImageFromArray(pixels), str(path))
    with pytest.raises(MaskError) as error:
        read_label(path)
    assert_one_line(error, "mask.nrrd has label values 0, 1, 7", "expected only 0 background, 1 liver, 2 tumour")


def test_phases_that_do_not_overlap_are_refused():
    ap = synthetic_ct()
    vp = synthetic_ct(origin=(0.0, 0.0, 500.0))
    with pytest.raises(ImageError) as error:
        load_case(ap, vp)
    assert_one_line(error, "AP and VP do not overlap in space")


def test_missing_phase_is_refused():
    with pytest.raises(ImageError) as error:
        load_case(synthetic_ct(), None)
    assert_one_line(error, "portal-venous (VP) phase is missing", "both phases are needed")


# --- grids ---------------------------------------------------------------------------------------


def test_vp_on_another_grid_is_resampled_onto_ap():
    # A linear ramp in physical space is reproduced exactly by linear interpolation.
    ramp = lambda x, y, z: -1000.0 + 10.0 * x + 5.0 * y + 2.0 * z  # noqa: E731
    ap = synthetic_ct(size=(40, 40, 10), spacing=(1.0, 1.0, 2.0), fill=ramp)
    vp = synthetic_ct(size=(30, 30, 12), spacing=(1.5, 1.5, 2.0), origin=(-3.0, -2.0, -2.0), fill=ramp)
    case = load_case(ap, vp)
    report = case.alignment
    assert report["same_grid"] is False and report["vp_resampled"] is True
    assert report["spacing_vp"] == (1.5, 1.5, 2.0)
    assert report["origin_offset_mm"] == pytest.approx(np.sqrt(9 + 4 + 4))
    assert report["overlap_fraction"] == pytest.approx(1.0)  # the VP scan contains the AP scan
    assert case.vp.GetSize() == ap.GetSize() and case.vp.GetSpacing() == ap.GetSpacing()
    assert case.vp.GetOrigin() == ap.GetOrigin()
    # Every AP voxel centre lies among VP voxel centres, so the resampled VP equals the ramp on the AP grid.
    assert np.allclose(sitk.GetArrayViewFromImage(case.vp), sitk.GetArrayViewFromImage(ap), atol=1e-3)


def test_label_on_another_grid_is_resampled_with_nearest_neighbour():
    ct = synthetic_ct(size=(40, 40, 10), spacing=(1.0, 1.0, 2.0))
    coarse = sitk.Image([20, 20, 10], sitk.sitkUInt8)
    coarse.SetSpacing((2.0, 2.0, 2.0))
    coarse.SetOrigin((0.5, 0.5, 0.0))  # covers the same region as the CT
    coarse[5:15, 5:15, 3:7] = 1
    coarse[8:12, 8:12, 4:6] = 2
    label = check_label(coarse, reference=ct)
    assert label.GetSize() == ct.GetSize() and label.GetSpacing() == ct.GetSpacing()
    counts = np.bincount(sitk.GetArrayViewFromImage(label).ravel(), minlength=3)
    assert counts.size == 3  # nearest neighbour creates no new values
    # Same labelled volumes (mm³) as on the coarse grid.
    assert counts[2] * 2.0 == pytest.approx(4 * 4 * 2 * 8.0)
    assert (counts[1] + counts[2]) * 2.0 == pytest.approx(10 * 10 * 4 * 8.0)


def test_label_far_from_image_is_refused():
    ct = synthetic_ct()
    far = sitk.Image([40, 40, 10], sitk.sitkUInt8)
    far.SetOrigin((0.0, 0.0, 900.0))
    with pytest.raises(MaskError) as error:
        check_label(far, reference=ct, name="mask")
    assert_one_line(error, "mask does not overlap the image")


def test_label_with_header_rounding_takes_the_image_geometry(tmp_path):
    dicom_spacing = (0.742999970912933, 0.742999970912933, 1.600000023841856)
    ct = synthetic_ct(spacing=dicom_spacing, origin=(-183.8, -190.0, -409.0))
    pixels = np.zeros((10, 40, 40), dtype=np.uint8)
    pixels[5, 10:20, 10:20] = 2
    mask = sitk.GetImageFromArray(pixels)
    mask.SetSpacing((0.743, 0.743, 1.6))  # float32 header values
    mask.SetOrigin((-183.80000305, -190.0, -409.0))
    path = tmp_path / "mask.nii.gz"
    sitk.WriteImage(mask, str(path))
    label = read_label(path, reference=ct)
    assert label.GetSpacing() == ct.GetSpacing() and label.GetOrigin() == ct.GetOrigin()
    assert np.array_equal(sitk.GetArrayViewFromImage(label), pixels)
