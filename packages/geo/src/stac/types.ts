/** The STAC 1.0.0 shapes CoreMachine writes and serves (only the members it uses are typed). */
export type Bbox = [number, number, number, number];

export interface Polygon {
  type: 'Polygon';
  coordinates: number[][][];
}
export interface MultiPolygon {
  type: 'MultiPolygon';
  coordinates: number[][][][];
}
export type Geometry = Polygon | MultiPolygon | { type: string; coordinates?: unknown; geometries?: unknown };

export interface StacLink {
  rel: string;
  href: string;
  type?: string;
  title?: string;
  method?: string;
  body?: unknown;
  merge?: boolean;
}

export interface StacAsset {
  href: string;
  type?: string;
  title?: string;
  roles?: string[];
  [field: string]: unknown;
}

export interface StacItem {
  type: 'Feature';
  stac_version: '1.0.0';
  stac_extensions: string[];
  id: string;
  collection: string;
  geometry: Geometry | null;
  bbox?: Bbox;
  properties: { datetime: string | null; start_datetime?: string; end_datetime?: string; [field: string]: unknown };
  links: StacLink[];
  assets: Record<string, StacAsset>;
}

export interface StacCollection {
  type: 'Collection';
  stac_version: '1.0.0';
  stac_extensions?: string[];
  id: string;
  title?: string;
  description: string;
  license: string;
  keywords?: string[];
  extent: { spatial: { bbox: number[][] }; temporal: { interval: Array<[string | null, string | null]> } };
  links: StacLink[];
  summaries?: Record<string, unknown>;
  [field: string]: unknown;
}
