import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Fails the run when the tests left a file of the checkout changed (see the file).
    globalSetup: ['test/global/tree-unchanged.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Tests start real servers and measure counts under load: two cores, so keep files from fighting for them.
    fileParallelism: false,
    reporters: ['default'],
  },
});
