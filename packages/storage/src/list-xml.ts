import { SaxesParser, type SaxesTagPlain } from 'saxes';
import type { BlobInfo } from './blob-info.ts';

/** ETags in their HTTP form (quoted, as If-Match takes them): listings return them bare. */
export function quoteEtag(etag: string): string {
  return etag === '' || etag.startsWith('"') || etag.startsWith('W/') ? etag : `"${etag}"`;
}

/**
 * A copy of `s` that does not point into the text it was cut from. V8 keeps a substring of 13
 * characters or more as a slice of its parent, so a blob name cut from a 64 KB chunk of the
 * response would keep the whole chunk alive for as long as the record lives: a page of
 * records would hold the page's XML.
 */
function detach(s: string): string {
  return s.length < 13 ? s : Buffer.from(s, 'utf8').toString('utf8');
}

/** `o[key] = value`, a key such as `__proto__` included (as data, not the prototype). */
function setData(o: Record<string, string>, key: string, value: string): void {
  if (key === '__proto__')
    Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
  else o[key] = value;
}

/** Values many blobs share (content types, dates, metadata keys), kept once. */
class Interned {
  readonly #map = new Map<string, string>();
  get(s: string): string {
    let v = this.#map.get(s);
    if (v === undefined) {
      if (this.#map.size >= 1024) this.#map.clear();
      v = detach(s);
      this.#map.set(v, v);
    }
    return v;
  }
}

/** What a List Blobs (flat) response body holds, as `BlobInfo`s. */
export interface ListXmlResult {
  blobs: BlobInfo[];
  /** The continuation marker; '' (or absent) when the listing ends with this page. */
  nextMarker: string;
}

/**
 * A streaming parser of one List Blobs (flat) response body: feed it the body's text as it
 * arrives (`write`), then `end()`. It keeps one small record per blob and nothing of the
 * document, so a page of 5,000 blobs with metadata costs its `BlobInfo`s and not the object
 * graph of a whole-document parse.
 *
 * The records equal what the SDK's listing gives through `toBlobInfo` in `blob-storage.ts`:
 * the name (percent-decoded when the service marks it `Encoded="true"`), `Content-Length` as a
 * number, `Content-Type` (empty → null), `Last-Modified` as a Date, the ETag quoted, metadata
 * (each child of `<Metadata>`; an element without text is "") and index tags
 * (`<Tags><TagSet><Tag><Key/><Value/>`) only when asked for, `{}` when the blob has none.
 */
export class ListBlobsXmlParser {
  readonly #parser = new SaxesParser();
  readonly #includeMetadata: boolean;
  readonly #includeTags: boolean;
  readonly #blobs: BlobInfo[] = [];
  readonly #path: string[] = [];
  readonly #interned = new Interned();
  #text = '';
  #nextMarker = '';
  #closed = false;
  // The blob being read.
  #name = '';
  #encoded = false;
  #size = 0;
  #contentType: string | null = null;
  #lastModified = '';
  #etag = '';
  #metadata: Record<string, string> | undefined;
  #tags: Record<string, string> | undefined;
  #tagKey = '';
  #tagValue = '';

  constructor(options: { includeMetadata?: boolean; includeTags?: boolean } = {}) {
    this.#includeMetadata = options.includeMetadata ?? false;
    this.#includeTags = options.includeTags ?? false;
    this.#parser.on('opentag', (tag) => this.#open(tag));
    this.#parser.on('text', (t) => (this.#text += t));
    this.#parser.on('cdata', (t) => (this.#text += t));
    this.#parser.on('closetag', (tag) => this.#close(tag.name));
  }

  /** Feeds the next piece of the body (already decoded to text). Throws on malformed XML. */
  write(chunk: string): void {
    this.#parser.write(chunk);
  }

  /** Blobs parsed so far that the caller has not taken yet. */
  take(): BlobInfo[] {
    return this.#blobs.splice(0, this.#blobs.length);
  }

  /** Ends the body; throws when it stopped before `</EnumerationResults>`. */
  end(): ListXmlResult {
    this.#parser.close();
    if (!this.#closed) throw new Error('The List Blobs response ended before </EnumerationResults>');
    return { blobs: this.take(), nextMarker: this.#nextMarker };
  }

  #open(tag: SaxesTagPlain): void {
    const depth = this.#path.push(tag.name);
    this.#text = '';
    if (depth === 3 && tag.name === 'Blob' && this.#path[1] === 'Blobs') {
      this.#name = '';
      this.#encoded = false;
      this.#size = 0;
      this.#contentType = null;
      this.#lastModified = '';
      this.#etag = '';
      this.#metadata = undefined;
      this.#tags = undefined;
    } else if (depth === 4 && this.#inBlob()) {
      if (tag.name === 'Name') this.#encoded = tag.attributes.Encoded === 'true';
      else if (tag.name === 'Metadata') this.#metadata ??= {};
      else if (tag.name === 'Tags') this.#tags ??= {};
    } else if (depth === 6 && tag.name === 'Tag' && this.#inBlob() && this.#path[3] === 'Tags') {
      this.#tagKey = '';
      this.#tagValue = '';
    }
  }

  #inBlob(): boolean {
    return this.#path[0] === 'EnumerationResults' && this.#path[1] === 'Blobs' && this.#path[2] === 'Blob';
  }

  #close(name: string): void {
    const depth = this.#path.length;
    const text = this.#text;
    if (depth === 1 && name === 'EnumerationResults') this.#closed = true;
    else if (depth === 2 && name === 'NextMarker' && this.#path[0] === 'EnumerationResults')
      this.#nextMarker = detach(text);
    else if (depth >= 3 && this.#inBlob()) {
      const section = this.#path[3];
      if (depth === 3) this.#blobs.push(this.#record());
      else if (depth === 4 && name === 'Name') this.#name = detach(this.#encoded ? decodeURIComponent(text) : text);
      else if (depth === 5 && section === 'Properties') {
        if (name === 'Content-Length') this.#size = Number(text);
        else if (name === 'Content-Type') this.#contentType = text ? this.#interned.get(text) : null;
        else if (name === 'Last-Modified') this.#lastModified = text;
        else if (name === 'Etag') this.#etag = detach(text);
      } else if (depth === 5 && section === 'Metadata' && this.#metadata) {
        setData(this.#metadata, this.#interned.get(name), detach(text));
      } else if (depth === 7 && section === 'Tags' && this.#path[5] === 'Tag') {
        if (name === 'Key') this.#tagKey = this.#interned.get(text);
        else if (name === 'Value') this.#tagValue = detach(text);
      } else if (depth === 6 && section === 'Tags' && name === 'Tag' && this.#tags) {
        setData(this.#tags, this.#tagKey, this.#tagValue);
      }
    }
    this.#path.pop();
    this.#text = '';
  }

  #record(): BlobInfo {
    return {
      name: this.#name,
      size: Number.isNaN(this.#size) ? 0 : this.#size,
      contentType: this.#contentType,
      lastModified: new Date(this.#lastModified),
      etag: quoteEtag(this.#etag),
      ...(this.#includeMetadata ? { metadata: this.#metadata ?? {} } : {}),
      ...(this.#includeTags ? { tags: this.#tags ?? {} } : {}),
    };
  }
}
