document.getElementById("app").textContent = "quarklink";
