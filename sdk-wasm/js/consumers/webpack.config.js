// webpack 5 with no loader or plugin: it emits the wasm found by `new URL(…, import.meta.url)` as
// an asset by itself.
export default {
  entry: "./src/main.js",
  output: { path: new URL("./dist-webpack/", import.meta.url).pathname, clean: true },
  mode: "production",
};
