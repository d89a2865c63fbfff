// usage: node sign.mjs IN.xml KEY.pem CERTS.pem [rsa|ec] [c14n|exc-c14n] > OUT.xml
// Enveloped XAdES-BES over the whole document (Reference URI=""), SHA-256, SigningTime and
// SigningCertificateV2 of the first certificate; every certificate in CERTS.pem goes into KeyInfo.
// KEY.pem is an unencrypted PKCS#8 private key.
import { readFileSync } from 'node:fs';
import { crypto, pemBlocks, xadesjs } from './common.mjs';

const [inPath, keyPath, certPath, kind = 'rsa', c14n = 'exc-c14n'] = process.argv.slice(2);
if (!certPath) {
  console.error('usage: node sign.mjs IN.xml KEY.pem CERTS.pem [rsa|ec] [c14n|exc-c14n]');
  process.exit(2);
}
const alg = kind === 'ec'
  ? { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' }
  : { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
const key = await crypto.subtle.importKey('pkcs8', pemBlocks(keyPath)[0].der, alg, false, ['sign']);
const certs = pemBlocks(certPath).map((b) => b.b64);

const doc = xadesjs.Parse(readFileSync(inPath, 'utf8'));
const signed = new xadesjs.SignedXml();
await signed.Sign(alg, key, doc, {
  x509: certs,
  signingCertificateV2: certs[0],
  signingTime: { value: new Date() },
  references: [{ uri: '', hash: 'SHA-256', transforms: ['enveloped', c14n] }],
});
// toString() of an enveloped signature = the document with ds:Signature appended as last child.
process.stdout.write(signed.toString());
