"""Where a case's progress is kept in the scene, shared by the three modules: on its segmentation node.

The segmentation node is the case: "reviewed" is an attribute on it, and the three largest tumour slices
(markups), the features table and the result table are node references from it. So every module reads
and writes the same state, whichever one did the step, and saving the scene keeps it.

A new automatic segmentation makes the review and everything computed from the old mask stale: the
references are dropped (the nodes themselves stay in the scene, so nothing is deleted). A one-click
correction keeps the review (the reviewer made it) but drops what was computed from the mask before.
Plain MRML code: it loads before DELICAITELib's packages are installed.
"""

REVIEWED_ATTRIBUTE = "DELICAITE.Reviewed"
SLICES_REFERENCE = "DELICAITESlices"
FEATURES_REFERENCE = "DELICAITEFeatures"
RESULT_REFERENCE = "DELICAITEResult"
DERIVED_REFERENCES = (SLICES_REFERENCE, FEATURES_REFERENCE, RESULT_REFERENCE)
STEPS = ("phases", "segment", "correct", "slices", "features", "recommend")


def isReviewed(segmentationNode):
    return segmentationNode is not None and segmentationNode.GetAttribute(REVIEWED_ATTRIBUTE) == "true"


def setReviewed(segmentationNode, reviewed):
    segmentationNode.SetAttribute(REVIEWED_ATTRIBUTE, "true" if reviewed else "false")


def maskReplaced(segmentationNode):
    """A new automatic mask: not reviewed, and nothing computed from the old one counts any more."""
    segmentationNode.SetAttribute(REVIEWED_ATTRIBUTE, "false")
    maskCorrected(segmentationNode)


def maskCorrected(segmentationNode):
    """The mask changed under a fix: slices, features and result were computed from the old one."""
    for role in DERIVED_REFERENCES:
        segmentationNode.RemoveNodeReferenceIDs(role)  # fires ModifiedEvent, as SetAttribute does


def derivedNode(segmentationNode, role):
    """The slices markups, features table or result table of this case (``role``: a *_REFERENCE)."""
    return segmentationNode.GetNodeReference(role) if segmentationNode is not None else None


def setDerivedNode(segmentationNode, role, node):
    segmentationNode.SetNodeReferenceID(role, node.GetID() if node is not None else None)


def resultRows(tableNode):
    """{quantity: (text, number)} of a result table (DELICAITELib.mrml.results.RESULT_ROWS: quantity, value,
    number); {} for None or a table of another kind."""
    numbers = tableNode.GetTable().GetColumnByName("number") if tableNode is not None else None
    if numbers is None:
        return {}
    return {tableNode.GetCellText(row, 0): (tableNode.GetCellText(row, 1), numbers.GetValue(row))
            for row in range(tableNode.GetNumberOfRows())}


def caseStatus(apNode, segmentationNode):
    """Which of the six steps are done: {"phases", "segment", "correct", "slices", "features", "recommend"}."""
    segments = segmentationNode.GetSegmentation() if segmentationNode is not None else None
    slices = derivedNode(segmentationNode, SLICES_REFERENCE)
    features = derivedNode(segmentationNode, FEATURES_REFERENCE)
    result = derivedNode(segmentationNode, RESULT_REFERENCE)
    return {
        "phases": apNode is not None,  # VP is optional (single-phase)
        "segment": segments is not None and segments.GetSegmentIdBySegmentName("Tumor") != "",
        "correct": isReviewed(segmentationNode),
        "slices": slices is not None and slices.GetNumberOfControlPoints() > 0,
        "features": features is not None and features.GetNumberOfRows() > 0,
        "recommend": result is not None and result.GetNumberOfRows() > 0,
    }
