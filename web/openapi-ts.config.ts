import { defineConfig } from '@hey-api/openapi-ts';

// The typed API client is generated from the API's one description; the
// generated folder is never edited by hand (npm run gen rewrites it).
export default defineConfig({
  input: '../api/openapi.yaml',
  output: { path: 'src/gen' },
  plugins: ['@hey-api/typescript', '@hey-api/sdk', { name: '@hey-api/client-fetch', throwOnError: false }],
});
