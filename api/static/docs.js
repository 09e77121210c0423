// The API reference at /docs: Swagger UI from the installed swagger-ui-bundle package, reading
// this service's own OpenAPI description. Nothing is fetched from elsewhere.
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
});
