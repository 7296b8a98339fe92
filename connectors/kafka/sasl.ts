/**
 * SASL login on a fresh broker connection (SaslHandshake v1, then SaslAuthenticate v1 frames): PLAIN, and
 * SCRAM-SHA-256/512 as RFC 5802 and KIP-84 describe it, the server's signature checked.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { API, type BrokerConnection, KafkaResponseError, ProtocolWriter } from './wire.ts';

export interface SaslCredentials {
  mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512';
  username: string;
  password: string;
}

export async function saslAuthenticate(connection: BrokerConnection, sasl: SaslCredentials): Promise<void> {
  const mechanism = sasl.mechanism.toUpperCase();
  const handshake = await connection.request(API.saslHandshake, 1, new ProtocolWriter().string(mechanism).finish());
  const code = handshake.int16();
  const offered = handshake.array((r) => r.string());
  if (code !== 0) throw new KafkaResponseError(code, `SASL ${mechanism}`, `the broker offers ${offered.join(', ')}`);
  if (sasl.mechanism === 'plain') {
    await exchange(connection, Buffer.from(`\u0000${sasl.username}\u0000${sasl.password}`, 'utf8'));
    return;
  }
  await scram(connection, sasl, sasl.mechanism === 'scram-sha-256' ? 'sha256' : 'sha512');
}

/** One SaslAuthenticate round trip; resolves with the server's bytes. */
async function exchange(connection: BrokerConnection, bytes: Buffer): Promise<Buffer> {
  const r = await connection.request(API.saslAuthenticate, 1, new ProtocolWriter().bytes(bytes).finish());
  const code = r.int16();
  const message = r.string();
  const answer = r.bytes() ?? Buffer.alloc(0);
  if (code !== 0) throw new KafkaResponseError(code, 'SASL authentication', message);
  return answer;
}

async function scram(connection: BrokerConnection, sasl: SaslCredentials, hash: 'sha256' | 'sha512'): Promise<void> {
  const nonce = randomBytes(24).toString('base64');
  const firstBare = `n=${saslName(sasl.username)},r=${nonce}`;
  const serverFirst = (await exchange(connection, Buffer.from(`n,,${firstBare}`, 'utf8'))).toString('utf8');
  const fields = attributes(serverFirst);
  const serverNonce = fields.get('r');
  const salt = fields.get('s');
  const iterations = Number(fields.get('i'));
  if (!serverNonce?.startsWith(nonce) || !salt || !Number.isInteger(iterations) || iterations < 1) {
    throw new KafkaResponseError(58, 'SASL SCRAM', `unexpected server-first message ${serverFirst}`);
  }
  const keyLength = hash === 'sha256' ? 32 : 64;
  const salted = pbkdf2Sync(sasl.password.normalize('NFKC'), Buffer.from(salt, 'base64'), iterations, keyLength, hash);
  const clientKey = createHmac(hash, salted).update('Client Key').digest();
  const storedKey = createHash(hash).update(clientKey).digest();
  const finalBare = `c=biws,r=${serverNonce}`;
  const authMessage = `${firstBare},${serverFirst},${finalBare}`;
  const signature = createHmac(hash, storedKey).update(authMessage).digest();
  const proof = Buffer.alloc(clientKey.length);
  for (let i = 0; i < proof.length; i++) proof[i] = clientKey[i]! ^ signature[i]!;
  const serverFinal = (
    await exchange(connection, Buffer.from(`${finalBare},p=${proof.toString('base64')}`, 'utf8'))
  ).toString('utf8');
  const verifier = attributes(serverFinal).get('v');
  const serverKey = createHmac(hash, salted).update('Server Key').digest();
  const expected = createHmac(hash, serverKey).update(authMessage).digest();
  const got = Buffer.from(verifier ?? '', 'base64');
  if (got.length !== expected.length || !timingSafeEqual(got, expected)) {
    throw new KafkaResponseError(
      58,
      'SASL SCRAM',
      "the broker's signature does not match: it does not know this password",
    );
  }
}

/** RFC 5802: ',' and '=' in a user name are escaped. */
function saslName(name: string): string {
  return name.replace(/=/g, '=3D').replace(/,/g, '=2C');
}

function attributes(message: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of message.split(',')) {
    const eq = part.indexOf('=');
    if (eq > 0) out.set(part.slice(0, eq), part.slice(eq + 1));
  }
  return out;
}
