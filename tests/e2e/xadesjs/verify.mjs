// usage: node verify.mjs SIGNED.xml [CERT.pem]
// Prints "valid" (exit 0) or "invalid: reason" (exit 1). With CERT.pem the signature must verify
// with that certificate's key; without it xadesjs tries every key found in KeyInfo.
import { readFileSync } from 'node:fs';
import { X509Certificate } from 'xmldsigjs';
import { pemBlocks, xadesjs } from './common.mjs';

const [path, certPath] = process.argv.slice(2);
try {
  const doc = xadesjs.Parse(readFileSync(path, 'utf8'));
  const sigs = doc.getElementsByTagNameNS('http://www.w3.org/2000/09/xmldsig#', 'Signature');
  if (sigs.length !== 1) throw new Error(`${sigs.length} signatures`);
  const signed = new xadesjs.SignedXml(doc);
  signed.LoadXml(sigs[0]);
  let ok;
  if (certPath) {
    const cert = new X509Certificate(pemBlocks(certPath)[0].der);
    ok = await signed.Verify(await cert.exportKey(signed.Algorithm));
  } else {
    ok = await signed.Verify();
  }
  if (!ok) throw new Error('signature or reference digest mismatch');
  console.log('valid');
} catch (err) {
  console.log(`invalid: ${err && err.message ? err.message : err}`);
  process.exitCode = 1;
}
