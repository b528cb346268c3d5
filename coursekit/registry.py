"""Where the CLI finds trainable models and benchmarks.

Each entry maps a name to ``"module:function"`` so nothing heavy is imported
until a command needs it.

* ``TRAINERS[name]`` -> ``train(out_dir: Path | None, seed: int, quick: bool) -> dict``:
  trains the model, writes its checkpoint and manifest entry into the run folder
  ``out_dir`` (``None``: ``./runs/NAME``; never the shipped folder) with
  ``coursekit.train.save_run`` (rank 0 only under torchrun) and returns the metrics
  recorded there. ``coursekit install-checkpoint`` ships a finished run.
* ``BENCHES[name]`` -> ``bench(quick: bool) -> list[dict]``: each dict is one table row
  with the keys ``benchmark``, ``ours``, ``reference``, ``ratio`` (ours / reference time,
  or ``None``) and ``note``.
"""

TRAINERS: dict[str, str] = {
    "fcn": "coursekit.segmentation.train:train_fcn",
    "unet": "coursekit.segmentation.train:train_unet",
    "fcn32s": "coursekit.segmentation.train:train_fcn32s",
    "fcn16s": "coursekit.segmentation.train:train_fcn16s",
    "fcn8s": "coursekit.segmentation.train:train_fcn8s",
    "segnet": "coursekit.segmentation.train:train_segnet",
    "unet_short": "coursekit.segmentation.train:train_unet_short",
    "depth": "coursekit.dense.train:train_depth",
    "flow": "coursekit.dense.train:train_flow",
    "maskrcnn": "coursekit.instance.train:train_maskrcnn",
    "keypointrcnn": "coursekit.pose.train:train_keypointrcnn",
    "densepose": "coursekit.densepose.train:train_densepose",
    "panopticfpn": "coursekit.panoptic.train:train_panoptic_fpn",
    "video_single_frame": "coursekit.video.train:train_video_single_frame",
    "video_late_fusion": "coursekit.video.train:train_video_late_fusion",
    "video_early_fusion": "coursekit.video.train:train_video_early_fusion",
    "video_cnn3d": "coursekit.video.train:train_video_cnn3d",
    "video_i3d": "coursekit.video.train:train_video_i3d",
    "video_i3d_scratch": "coursekit.video.train:train_video_i3d_scratch",
    "sam": "coursekit.sam.train:train_sam",
    "captioner": "coursekit.heads.train:train_captioner",
    "meshrcnn": "coursekit.heads.train:train_meshrcnn",
}

BENCHES: dict[str, str] = {
    "segmentation": "coursekit.segmentation.bench:bench",
    "shapesworld": "coursekit.data.bench:bench",
    "detection": "coursekit.detection.bench:bench",
    "instance": "coursekit.instance.bench:bench",
    "panoptic": "coursekit.panoptic.bench:bench",
    "upsampling": "coursekit.upsampling.bench:bench",
    "sam": "coursekit.sam.bench:bench",
    "video": "coursekit.video.bench:bench",
}
