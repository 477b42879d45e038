// A decrypt thread of ParallelFieldCipher. Plain JavaScript, loaded without tsx: it only opens
// values the caller has taken apart (see the job layout there) and answers with their text, or
// with `failed` (the caller then decrypts the batch itself, for the error that names the place).
import { parentPort, workerData } from 'node:worker_threads';
import { gcmOpen, NONCE_BYTES } from './gcm-open.mjs';

const keys = workerData.keys.map((k) => Buffer.from(k));

parentPort.on('message', ({ id, bytes, layout }) => {
  const buf = Buffer.from(bytes);
  const lay = new Int32Array(layout);
  const values = new Array(lay.length / 3);
  let off = 0;
  try {
    for (let i = 0, j = 0; j < lay.length; i++, j += 3) {
      const nonce = buf.subarray(off, (off += NONCE_BYTES));
      const body = buf.subarray(off, (off += lay[j + 1]));
      const aad = buf.subarray(off, (off += lay[j + 2]));
      values[i] = gcmOpen(keys[lay[j]], nonce, body, aad);
    }
  } catch {
    parentPort.postMessage({ id, failed: true });
    return;
  }
  parentPort.postMessage({ id, values });
});
parentPort.postMessage('ready');
