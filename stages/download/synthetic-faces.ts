// The offline default dataset: drawn faces with known attributes, rendered SVG -> PNG with sharp.
// Deterministic: face i depends only on (seed, i), so raising `data.count` adds faces and never changes
// the earlier ones.
//
// The target is the "blink": eyes open or closed. It is meant to be learnable but not trivially so:
// eyes are small, heads tilt, lighting and backgrounds vary, speckle noise covers the face, and
// sunglasses (a fixed share of faces) hide the eyes entirely, so no model can beat
// 1 - sunglasses_share / 2 on average (about 93% with the default share).

import { mulberry32 } from '../random.ts';

export interface FaceAttributes {
  eye_state: 'open' | 'closed';
  expression: 'neutral' | 'smile' | 'frown';
  glasses: 'none' | 'regular' | 'sunglasses';
  skin: number;
  hair: number;
  tilt: number;
  background: number;
  noise: number;
}

export const SUNGLASSES_SHARE = 0.14;
const SKIN = ['#f1c27d', '#e0ac69', '#c68642', '#8d5524', '#ffdbac', '#a0522d'];
const HAIR = ['#2c1b0e', '#4b2e1e', '#a55728', '#d6b370', '#1c1c1c', '#8c8c8c', '#b8860b'];
const BACKGROUND = ['#dfe7ef', '#f4e1d2', '#d8f0d8', '#e8e8e8', '#c9d6df', '#fff3c4', '#efd9f7', '#9fb3c8'];

const rng = mulberry32;

const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];

export function faceAttributes(seed: number, index: number): FaceAttributes {
  const r = rng(seed * 1_000_003 + index);
  const glassesRoll = r();
  return {
    eye_state: r() < 0.5 ? 'open' : 'closed',
    expression: pick(r, ['neutral', 'smile', 'frown'] as const),
    glasses: glassesRoll < SUNGLASSES_SHARE ? 'sunglasses' : glassesRoll < SUNGLASSES_SHARE + 0.2 ? 'regular' : 'none',
    skin: Math.floor(r() * SKIN.length),
    hair: Math.floor(r() * HAIR.length),
    tilt: Math.round((r() * 40 - 20) * 10) / 10,
    background: Math.floor(r() * BACKGROUND.length),
    noise: Math.round(r() * 100) / 100,
  };
}

/** An SVG of the face, `size` pixels square. Speckles come from their own stream so they vary per face. */
export function faceSvg(a: FaceAttributes, seed: number, index: number, size = 128): string {
  const r = rng((seed * 7_919 + index) ^ 0x5bd1e995);
  const eyeY = 56 + (r() * 4 - 2);
  const eyeDx = 15 + r() * 3;
  const eyeW = 6 + r() * 2;
  const eye = (cx: number) =>
    a.eye_state === 'open'
      ? `<ellipse cx="${cx}" cy="${eyeY}" rx="${eyeW}" ry="${eyeW * 0.6}" fill="#fff"/><circle cx="${cx + r() * 2 - 1}" cy="${eyeY}" r="${eyeW * 0.35}" fill="#222"/>`
      : `<path d="M ${cx - eyeW} ${eyeY} Q ${cx} ${eyeY + 3} ${cx + eyeW} ${eyeY}" stroke="#222" stroke-width="2" fill="none"/>`;
  const mouth = { neutral: 'M 52 88 L 76 88', smile: 'M 50 85 Q 64 98 78 85', frown: 'M 50 92 Q 64 82 78 92' }[
    a.expression
  ];
  const glasses =
    a.glasses === 'none'
      ? ''
      : `<g stroke="#111" stroke-width="2" fill="${a.glasses === 'sunglasses' ? '#111' : 'none'}">` +
        `<rect x="${64 - eyeDx - 10}" y="${eyeY - 8}" width="20" height="15" rx="4"/>` +
        `<rect x="${64 + eyeDx - 10}" y="${eyeY - 8}" width="20" height="15" rx="4"/>` +
        `<path d="M ${64 - eyeDx + 10} ${eyeY - 2} L ${64 + eyeDx - 10} ${eyeY - 2}"/></g>`;
  const speckles = Array.from({ length: Math.round(a.noise * 220) }, () => {
    const shade = Math.floor(r() * 255);
    return `<circle cx="${(r() * size).toFixed(1)}" cy="${(r() * size).toFixed(1)}" r="${(0.5 + r() * 1.2).toFixed(1)}" fill="rgb(${shade},${shade},${shade})" fill-opacity="0.55"/>`;
  }).join('');
  const light = (0.75 + r() * 0.25).toFixed(2);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}" viewBox="0 0 128 128">
<rect width="128" height="128" fill="${BACKGROUND[a.background]}"/>
<g transform="rotate(${a.tilt} 64 64)" opacity="${light}">
<ellipse cx="64" cy="40" rx="40" ry="30" fill="${HAIR[a.hair]}"/>
<ellipse cx="64" cy="68" rx="34" ry="42" fill="${SKIN[a.skin]}"/>
${eye(64 - eyeDx)}${eye(64 + eyeDx)}
<path d="M 64 62 L 60 76 L 66 76" stroke="#00000055" stroke-width="1.5" fill="none"/>
<path d="${mouth}" stroke="#7a2e2e" stroke-width="2.5" fill="none"/>
${glasses}
</g>
${speckles}
</svg>`;
}

/** Render face `index` to PNG bytes. */
export async function renderFace(
  seed: number,
  index: number,
  size = 128,
): Promise<{ png: Buffer; attributes: FaceAttributes }> {
  const { default: sharp } = await import('sharp');
  const attributes = faceAttributes(seed, index);
  const png = await sharp(Buffer.from(faceSvg(attributes, seed, index, size)))
    .png({ compressionLevel: 6 })
    .toBuffer();
  return { png, attributes };
}
