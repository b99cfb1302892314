// @ts-check
// Where on the camera's own picture a click on the live view fell: the picture is shown whole
// (object-fit: contain), so a stage of another shape has black bars, and a click on them is no point
// of the picture. No DOM here, so the geometry is tested without a browser (tests/cameras).

/**
 * The picture's point under a click, as fractions of its width and height from the top left, with the
 * picture's aspect (width / height); null when the click is on a bar beside it or nothing shows yet.
 * @param {number} clickX  pixels from the stage's left edge
 * @param {number} clickY  pixels from the stage's top edge
 * @param {number} stageWidth
 * @param {number} stageHeight
 * @param {number} pictureWidth  the stream's own size (videoWidth, naturalWidth)
 * @param {number} pictureHeight
 * @returns {{x: number, y: number, aspect: number}|null}
 */
export function pointOnPicture(clickX, clickY, stageWidth, stageHeight, pictureWidth, pictureHeight) {
  if (!(stageWidth > 0 && stageHeight > 0 && pictureWidth > 0 && pictureHeight > 0)) return null;
  const scale = Math.min(stageWidth / pictureWidth, stageHeight / pictureHeight);
  const shownWidth = pictureWidth * scale;
  const shownHeight = pictureHeight * scale;
  const x = (clickX - (stageWidth - shownWidth) / 2) / shownWidth;
  const y = (clickY - (stageHeight - shownHeight) / 2) / shownHeight;
  if (!(x >= 0 && x <= 1 && y >= 0 && y <= 1)) return null;
  return { x, y, aspect: pictureWidth / pictureHeight };
}
