"""Face tracks over a target window, the steady crop around them, and the face masks a sample carries.

Boxes are (x, y, w, h) floats. A track is a list of [frame offset in the window, x, y, w, h] in source
pixels at the sampled frames where the face was linked. The pixel mask of frame i is the integer box
`floor(x) <= column < ceil(x + w)`, `floor(y) <= row < ceil(y + h)` of `face_boxes[i]` (output pixels,
clipped to the frame); the latent mask marks a 32x32 cell of a latent frame when any pixel of any pixel
frame it covers is in the pixel mask, so a trainer masking those cells masks the whole face.

Masks cover the tracked box grown by `targets.face.mask_scale` about its centre (`frame_boxes`).

The default detector is dlib's HOG frontal-face detector (`targets.face.detector`). On real photographs
that ship inside Python packages (benchmarks/faces_real.py: 7 frontal photos at face heights 40-130 px in
the 320-px frame, four positions, in-plane angles up to 30 degrees) it finds the face in 86% of frames with
no false detection, against 62% and one false detection for OpenCV's Haar cascade (the old default) and 94%
for dlib's CNN detector at 76x Haar's CPU time; it holds at +-30 degrees (86%) where Haar falls to 4%.
e; it holds at +-30 degrees (86%) where Haar falls to 4%.
