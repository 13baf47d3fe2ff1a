"""Files the library writes: checksummed artifacts (trained models, encoders, reductions) and atomic writes.

The lowest floor of the library: it imports nothing of DELICAITELib but the errors, so segmentation,
features, models and cohorts all store their files here without importing each other.
"""

from .artifacts import METADATA_FILE, WEIGHTS_FILE, artifact_checksum, read_artifact, write_artifact
from .folders import (
    FAILURE_FILE,
    check_output_folder,
    clear_failure,
    output_lock,
    record_failure,
    strip_absolute_paths,
)
from .atomic import (
    remove_stale_temporaries,
    replace_folder,
    replacing,
    temporary_beside,
    write_bytes_atomically,
    write_csv_atomically,
    write_image_atomically,
    write_json_atomically,
    write_npz_atomically,
    write_text_atomically,
)

__all__ = ["METADATA_FILE", "WEIGHTS_FILE", "artifact_checksum", "read_artifact", "write_artifact",
           "FAILURE_FILE", "check_output_folder", "clear_failure", "output_lock", "record_failure", "strip_absolute_paths",
           "remove_stale_temporaries", "replace_folder", "replacing", "temporary_beside", "write_bytes_atomically",
           "write_csv_atomically", "write_image_atomically", "write_json_atomically", "write_npz_atomically",
           "write_text_atomically"]
