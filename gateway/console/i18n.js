// The console's words in Brazilian Portuguese and English, chosen by the browser's language.

const words = {
  "pt-BR": {
    signIn: "Entrar",
    email: "E-mail",
    password: "Senha",
    signInFailed: "E-mail ou senha incorretos.",
    signOut: "Sair",
    inbox: "Caixa de entrada",
    empty: "Nenhuma conversa por aqui.",
    live: "Ao vivo",
    reconnecting: "Reconectando…",
    noPreview: "(sem texto)",
    reply: "Escreva uma resposta",
    send: "Enviar",
    take: "Assumir",
    resolve: "Resolver",
    older: "Mensagens anteriores",
    download: "Baixar",
    deleted: "Mensagem apagada",
    ticks: { pending: "enviando", accepted: "aceita", sent: "enviada", delivered: "entregue", read: "lida", failed: "falhou" },
    status: { open: "Aberto", in_progress: "Em atendimento", waiting: "Aguardando", resolved: "Resolvido", cancelled: "Cancelado" },
  },
  en: {
    signIn: "Sign in",
    email: "Email",
    password: "Password",
    signInFailed: "Wrong email or password.",
    signOut: "Sign out",
    inbox: "Inbox",
    empty: "No conversations here.",
    live: "Live",
    reconnecting: "Reconnecting…",
    noPreview: "(no text)",
    reply: "Write a reply",
    send: "Send",
    take: "Take it",
    resolve: "Resolve",
    older: "Older messages",
    download: "Download",
    deleted: "Message deleted",
    ticks: { pending: "sending", accepted: "accepted", sent: "sent", delivered: "delivered", read: "read", failed: "failed" },
    status: { open: "Open", in_progress: "In progress", waiting: "Waiting", resolved: "Resolved", cancelled: "Cancelled" },
  },
};

const language = (navigator.language || "pt-BR").toLowerCase().startsWith("pt") ? "pt-BR" : "en";
document.documentElement.lang = language;

/** The words of the browser's language. */
export const t = words[language];
