// Shared setup for the xadesjs helpers: xmldom DOM + @peculiar/webcrypto engine.
import { readFileSync } from 'node:fs';
import * as xmldom from '@xmldom/xmldom';
import xpath from 'xpath';
import { Crypto } from '@peculiar/webcrypto';
import * as xadesjs from 'xadesjs';

xadesjs.setNodeDependencies({
  XMLSerializer: xmldom.XMLSerializer,
  DOMParser: xmldom.DOMParser,
  DOMImplementation: xmldom.DOMImplementation,
  xpath,
});
export const crypto = new Crypto();
xadesjs.Application.setEngine('NodeJS', crypto);
export { xadesjs };

// PEM -> [{label, der}] for every block in the file.
export function pemBlocks(path) {
  const text = readFileSync(path, 'utf8');
  const re = /-----BEGIN ([A-Z ]+)-----([\s\S]*?)-----END \1-----/g;
  const out = [];
  for (const m of text.matchAll(re)) {
    out.push({ label: m[1], b64: m[2].replace(/\s+/g, ''), der: Buffer.from(m[2].replace(/\s+/g, ''), 'base64') });
  }
  if (!out.length) throw new Error(`no PEM block in ${path}`);
  return out;
}
