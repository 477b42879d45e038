import { createHash } from 'node:crypto';
import type { Digest } from '../../application/ports';

export class NodeSha256Digest implements Digest {
  hash(text: string): string {
    return createHash('sha256').update(text, 'utf8').digest('hex');
  }
}
