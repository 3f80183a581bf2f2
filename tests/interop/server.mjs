// A real, unmodified Better Auth server (in-memory adapter + JWT plugin) that the
// Python test-suite starts to obtain real JWTs. Configuration comes from the
// environment; see README.md. Prints "READY <port>" once it is listening.
import { createServer } from "node:http";
import { betterAuth } from "better-auth";
import { toNodeHandler } from "better-auth/node";
import { jwt } from "better-auth/plugins";

const env = process.env;
const port = Number.parseInt(env.PORT ?? "", 10);
const secret = env.BETTER_AUTH_SECRET;
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  throw new Error("PORT must be set to a TCP port number");
}
if (!secret) throw new Error("BETTER_AUTH_SECRET must be set");
const baseURL = env.BASE_URL || `http://127.0.0.1:${port}`;

// The asymmetric algorithms the jwt plugin accepts (JWKOptions in its types).
const KEY_PAIR_CONFIGS = {
  EdDSA: { alg: "EdDSA", crv: "Ed25519" },
  ES256: { alg: "ES256" },
  ES512: { alg: "ES512" },
  RS256: { alg: "RS256", modulusLength: 2048 },
  PS256: { alg: "PS256", modulusLength: 2048 },
};
const alg = env.JWT_ALG || "EdDSA";
const keyPairConfig = KEY_PAIR_CONFIGS[alg];
if (!keyPairConfig) {
  throw new Error(`JWT_ALG=${alg} is not one of ${Object.keys(KEY_PAIR_CONFIGS).join(", ")}`);
}

const auth = betterAuth({
  baseURL,
  secret,
  // No `database` option: Better Auth's in-memory adapter (state lost on exit).
  emailAndPassword: { enabled: true },
  trustedOrigins: [baseURL],
  // Tests sign up many users quickly; never rate-limit (it is on when NODE_ENV=production).
  rateLimit: { enabled: false },
  telemetry: { enabled: false },
  plugins: [
    jwt({
      jwks: { keyPairConfig },
      jwt: {
        issuer: baseURL,
        audience: baseURL,
        expirationTime: env.JWT_EXPIRATION || "15m",
      },
    }),
  ],
});

const server = createServer(toNodeHandler(auth));
server.listen(port, "127.0.0.1", () => {
  console.log(`READY ${server.address().port}`);
});

const shutdown = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
