// The tutorial's front end: shows the API it was built for. Vite replaces
// import.meta.env.VITE_API_URL at build time with the value in .env.production, which the
// Dockerfile writes from the API_URL build argument.
document.getElementById("api").textContent = import.meta.env.VITE_API_URL;
