/**
 * Catalog: the STAC collections (served at /stac), a collection's items in pages, and each item's
 * footprint over Natural Earth's land outlines (world-atlas, bundled) and a longitude/latitude
 * grid (SVG, plate carrée: x = lon + 180, y = 90 − lat), with its properties, assets and thumbnail.
 */
import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { feature } from 'topojson-client';
import land from 'world-atlas/land-110m.json';
import type { ShownError } from '../api.ts';
import { navigate, useLocation } from '../nav.tsx';
import { ErrorBox, Json } from '../ui.tsx';

interface StacLink {
  rel: string;
  href: string;
}
interface StacCollection {
  id: string;
  title?: string;
  description?: string;
  extent?: { spatial?: { bbox?: number[][] } };
}
type Position = number[];
interface Geometry {
  type: string;
  coordinates: unknown;
}
interface StacItem {
  id: string;
  collection?: string;
  bbox?: number[];
  geometry: Geometry | null;
  properties: Record<string, unknown>;
  assets: Record<string, { href: string; type?: string; title?: string; roles?: string[] }>;
}
interface ItemPage {
  features: StacItem[];
  links?: StacLink[];
  numberMatched?: number;
}

class StacHttpError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

async function stac<T>(url: string): Promise<T> {
  const res = await fetch(url, { headers: { accept: 'application/json' } });
  const body = (await res.json().catch(() => null)) as (T & { code?: string; description?: string }) | null;
  if (!res.ok || !body)
    throw new StacHttpError(body?.code ?? `HTTP_${res.status}`, body?.description ?? `${url} answered ${res.status}`);
  return body;
}

const shown = (err: unknown): ShownError | null =>
  err
    ? {
        code: err instanceof StacHttpError ? err.code : 'ERROR',
        message: err instanceof Error ? err.message : String(err),
        issues: [],
      }
    : null;

const PAGE = 50;

export function CatalogPage() {
  const { query } = useLocation();
  const collections = useQuery({
    queryKey: ['stac', 'collections'],
    queryFn: () => stac<{ collections: StacCollection[] }>('/stac/collections'),
  });
  const list = collections.data?.collections ?? [];
  const chosen = query.get('collection') ?? list[0]?.id ?? '';
  return (
    <section className="card" aria-labelledby="catalog-title">
      <h1 id="catalog-title">Catalog</h1>
      <ErrorBox error={shown(collections.error)} />
      {collections.data && !list.length ? <p className="muted">No STAC collections yet.</p> : null}
      {list.length ? (
        <label className="field">
          <span className="label">Collection</span>
          <select
            value={chosen}
            onChange={(e) => navigate(`/catalog?collection=${encodeURIComponent(e.target.value)}`, { replace: true })}
          >
            {list.map((c) => (
              <option key={c.id} value={c.id}>
                {c.title ? `${c.id} — ${c.title}` : c.id}
              </option>
            ))}
          </select>
        </label>
      ) : null}
      {chosen ? <Items key={chosen} collection={chosen} /> : null}
    </section>
  );
}

function Items({ collection }: { collection: string }) {
  const [pages, setPages] = useState<string[]>([]);
  const first = `/stac/collections/${encodeURIComponent(collection)}/items?limit=${PAGE}`;
  const url = pages[pages.length - 1] ?? first;
  const items = useQuery({
    queryKey: ['stac', 'items', url],
    queryFn: () => stac<ItemPage>(url),
    placeholderData: keepPreviousData,
  });
  const [selected, setSelected] = useState<string | null>(null);
  const features = items.data?.features ?? [];
  const item = features.find((f) => f.id === selected) ?? features[0];
  const next = items.data?.links?.find((l) => l.rel === 'next')?.href;
  return (
    <>
      <ErrorBox error={shown(items.error)} />
      <div className="catalog">
        <WorldMap items={features} selected={item?.id ?? null} onSelect={setSelected} />
        <div className="catalog-side">
          <p className="muted">
            {features.length} item(s) on this page
            {items.data?.numberMatched !== undefined ? ` of ${items.data.numberMatched}` : ''}
          </p>
          <ul className="items" aria-label="Items">
            {features.map((f) => (
              <li key={f.id}>
                <button
                  type="button"
                  className={f.id === item?.id ? 'primary' : ''}
                  aria-pressed={f.id === item?.id}
                  onClick={() => setSelected(f.id)}
                >
                  {f.id}
                </button>
              </li>
            ))}
          </ul>
          <nav className="pager" aria-label="Item pages">
            <button type="button" disabled={!pages.length} onClick={() => setPages((p) => p.slice(0, -1))}>
              ← Previous
            </button>
            <button type="button" disabled={!next} onClick={() => next && setPages((p) => [...p, sameOrigin(next)])}>
              Next →
            </button>
          </nav>
        </div>
      </div>
      {item ? <ItemDetail item={item} /> : null}
    </>
  );
}

/** A link the STAC API built with its own base URL, fetched through this page's origin. */
function sameOrigin(href: string): string {
  const u = new URL(href, location.href);
  return `${u.pathname}${u.search}`;
}

function ItemDetail({ item }: { item: StacItem }) {
  const thumb = item.assets['thumbnail'];
  return (
    <div className="item-detail" data-item-detail={item.id}>
      <h2>{item.id}</h2>
      {thumb ? <img className="thumbnail" src={thumb.href} alt={`Thumbnail of ${item.id}`} /> : null}
      <p className="muted">bbox {item.bbox ? item.bbox.map((v) => Number(v.toFixed(5))).join(', ') : '—'}</p>
      <h3>Assets</h3>
      <ul>
        {Object.entries(item.assets).map(([key, a]) => (
          <li key={key}>
            <strong>{key}</strong> {a.type ? <span className="muted">{a.type}</span> : null}{' '}
            <a href={a.href}>{a.title ?? a.href}</a>
          </li>
        ))}
      </ul>
      <h3>Properties</h3>
      <Json value={item.properties} label="Item properties" />
    </div>
  );
}

const project = ([lon = 0, lat = 0]: Position) => `${(lon + 180).toFixed(4)},${(90 - lat).toFixed(4)}`;

function ringsOf(item: StacItem): Position[][] {
  const g = item.geometry;
  if (g?.type === 'Polygon') return g.coordinates as Position[][];
  if (g?.type === 'MultiPolygon') return (g.coordinates as Position[][][]).flat();
  if (item.bbox && item.bbox.length >= 4) {
    const [w, s, e, n] =
      item.bbox.length === 6 ? [item.bbox[0]!, item.bbox[1]!, item.bbox[3]!, item.bbox[4]!] : item.bbox;
    return [
      [
        [w!, s!],
        [e!, s!],
        [e!, n!],
        [w!, n!],
        [w!, s!],
      ],
    ];
  }
  return [];
}

const footprintPath = (item: StacItem) =>
  ringsOf(item)
    .map((ring) => `M${ring.map(project).join('L')}Z`)
    .join('');

type Topology = Parameters<typeof feature>[0];

/** Natural Earth 1:110m land as one SVG path, computed once. */
let landPath: string | null = null;
function landOutline(): string {
  if (landPath !== null) return landPath;
  const topology = land as unknown as Topology;
  const geo = feature(topology, topology.objects['land']!) as unknown as
    { type: 'FeatureCollection'; features: Array<{ geometry: Geometry }> } | { type: 'Feature'; geometry: Geometry };
  const geometries = geo.type === 'FeatureCollection' ? geo.features.map((f) => f.geometry) : [geo.geometry];
  landPath = geometries
    .flatMap((g) =>
      g.type === 'Polygon'
        ? (g.coordinates as Position[][])
        : g.type === 'MultiPolygon'
          ? (g.coordinates as Position[][][]).flat()
          : [],
    )
    .map((ring) => `M${ring.map(project).join('L')}Z`)
    .join('');
  return landPath;
}

/** The footprints over a graticule (every 30°), equator and prime meridian stronger. */
function WorldMap({
  items,
  selected,
  onSelect,
}: {
  items: StacItem[];
  selected: string | null;
  onSelect: (id: string) => void;
}) {
  const lons = Array.from({ length: 13 }, (_, i) => -180 + i * 30);
  const lats = Array.from({ length: 7 }, (_, i) => -90 + i * 30);
  return (
    <svg className="world" viewBox="0 0 360 180" role="img" aria-label="Item footprints on a world map">
      <rect x="0" y="0" width="360" height="180" className="ocean" />
      <path d={landOutline()} className="land" data-basemap="natural-earth-110m" />
      {lons.map((lon) => (
        <line key={`x${lon}`} x1={lon + 180} x2={lon + 180} y1={0} y2={180} className={lon === 0 ? 'axis' : 'grid'} />
      ))}
      {lats.map((lat) => (
        <line key={`y${lat}`} y1={90 - lat} y2={90 - lat} x1={0} x2={360} className={lat === 0 ? 'axis' : 'grid'} />
      ))}
      {lons.slice(0, -1).map((lon) => (
        <text key={`t${lon}`} x={lon + 181} y={178} className="grid-label">
          {lon}°
        </text>
      ))}
      {items.map((item) => (
        <path
          key={item.id}
          d={footprintPath(item)}
          data-item={item.id}
          className={item.id === selected ? 'footprint selected' : 'footprint'}
          onClick={() => onSelect(item.id)}
        >
          <title>{item.id}</title>
        </path>
      ))}
    </svg>
  );
}
