"""Deep imaging features of a case (PAPER.md, "Features"): a self-supervised ViT encoder and a supervised
CNN per phase, both on the preprocessed 224 × 224 crops of the three largest tumour slices.

- ``vit``: a vision transformer in the DINOv2 architecture and state-dict layout (official checkpoints load).
- ``encoder``: block features (CLS and mean patch token) of a case; encoder weights files.
- ``pretrain``, ``dino``: self-supervised (DINO) pretraining of a small ViT on a cohort's own slices,
  offline; ``dino`` holds the method's parts (multi-crop views, projection head, loss).
- ``block_report``: which block to use (KNN AUC, silhouette, Calinski–Harabasz, t-SNE).
- ``cnn``, ``stacking``, ``gradcam``: the supervised CNN per phase, AP/VP stacking, Grad-CAM overlays.
- ``reduction``: PCA of deep features fitted on training patients only.
- ``patches``: real tumour and healthy-liver patches of a labelled CT (tests, block reports, pretraining).
"""
