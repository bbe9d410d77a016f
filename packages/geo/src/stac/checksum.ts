import { createHash } from 'node:crypto';

/**
 * `file:checksum` value: a multihash of SHA2-256 (`12` = sha2-256, `20` = 32 bytes, then the
 * digest), hex-encoded. Streams the bytes, so memory stays flat whatever the blob size.
 * @example await multihashSha256(await storage.readStream('bronze', 'a.tif')) // '1220…'
 */
export async function multihashSha256(stream: AsyncIterable<Uint8Array | string>): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of stream) hash.update(chunk);
  return '1220' + hash.digest('hex');
}
