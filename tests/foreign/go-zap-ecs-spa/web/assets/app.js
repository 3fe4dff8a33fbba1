// Tiny client-side router: every path is rendered here; data comes from /api/.
const app = document.getElementById("app");

async function render() {
  const res = await fetch("/api/items");
  const { items } = await res.json();
  app.innerHTML = `<h1>Storefront</h1><ul>${items
    .map((i) => `<li><a href="/items/${i.id}">${i.name}</a> ${(i.price_cents / 100).toFixed(2)} €</li>`)
    .join("")}</ul>`;
}

window.addEventListener("popstate", render);
render();
