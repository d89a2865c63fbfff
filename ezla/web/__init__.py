"""Two small pages: the employer's inbox and the patient's list (printable). Plain HTML + one script;
the bearer token stays in the tab's sessionStorage and goes only to this origin's API."""
