const s=document.getElementById('state'); s.textContent='placeholder';
