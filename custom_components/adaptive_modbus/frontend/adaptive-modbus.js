var K=globalThis,Q=K.ShadowRoot&&(K.ShadyCSS===void 0||K.ShadyCSS.nativeShadow)&&"adoptedStyleSheets"in Document.prototype&&"replace"in CSSStyleSheet.prototype,at=Symbol(),wt=new WeakMap,z=class{constructor(t,e,s){if(this._$cssResult$=!0,s!==at)throw Error("CSSResult is not constructable. Use `unsafeCSS` or `css` instead.");this.cssText=t,this.t=e}get styleSheet(){let t=this.o,e=this.t;if(Q&&t===void 0){let s=e!==void 0&&e.length===1;s&&(t=wt.get(e)),t===void 0&&((this.o=t=new CSSStyleSheet).replaceSync(this.cssText),s&&wt.set(e,t))}return t}toString(){return this.cssText}},xt=i=>new z(typeof i=="string"?i:i+"",void 0,at),A=(i,...t)=>{let e=i.length===1?i[0]:t.reduce((s,r,n)=>s+(d=>{if(d._$cssResult$===!0)return d.cssText;if(typeof d=="number")return d;throw Error("Value passed to 'css' function must be a 'css' function result: "+d+". Use 'unsafeCSS' to pass non-literal values, but take care to ensure page security.")})(r)+i[n+1],i[0]);return new z(e,i,at)},At=(i,t)=>{if(Q)i.adoptedStyleSheets=t.map(e=>e instanceof CSSStyleSheet?e:e.styleSheet);else for(let e of t){let s=document.createElement("style"),r=K.litNonce;r!==void 0&&s.setAttribute("nonce",r),s.textContent=e.cssText,i.appendChild(s)}},ot=Q?i=>i:i=>i instanceof CSSStyleSheet?(t=>{let e="";for(let s of t.cssRules)e+=s.cssText;return xt(e)})(i):i;var{is:ee,defineProperty:se,getOwnPropertyDescriptor:ie,getOwnPropertyNames:re,getOwnPropertySymbols:ne,getPrototypeOf:ae}=Object,Z=globalThis,St=Z.trustedTypes,oe=St?St.emptyScript:"",de=Z.reactiveElementPolyfillSupport,U=(i,t)=>i,dt={toAttribute(i,t){switch(t){case Boolean:i=i?oe:null;break;case Object:case Array:i=i==null?i:JSON.stringify(i)}return i},fromAttribute(i,t){let e=i;switch(t){case Boolean:e=i!==null;break;case Number:e=i===null?null:Number(i);break;case Object:case Array:try{e=JSON.parse(i)}catch{e=null}}return e}},kt=(i,t)=>!ee(i,t),Et={attribute:!0,type:String,converter:dt,reflect:!1,useDefault:!1,hasChanged:kt};Symbol.metadata??=Symbol("metadata"),Z.litPropertyMetadata??=new WeakMap;var x=class extends HTMLElement{static addInitializer(t){this._$Ei(),(this.l??=[]).push(t)}static get observedAttributes(){return this.finalize(),this._$Eh&&[...this._$Eh.keys()]}static createProperty(t,e=Et){if(e.state&&(e.attribute=!1),this._$Ei(),this.prototype.hasOwnProperty(t)&&((e=Object.create(e)).wrapped=!0),this.elementProperties.set(t,e),!e.noAccessor){let s=Symbol(),r=this.getPropertyDescriptor(t,s,e);r!==void 0&&se(this.prototype,t,r)}}static getPropertyDescriptor(t,e,s){let{get:r,set:n}=ie(this.prototype,t)??{get(){return this[e]},set(d){this[e]=d}};return{get:r,set(d){let l=r?.call(this);n?.call(this,d),this.requestUpdate(t,l,s)},configurable:!0,enumerable:!0}}static getPropertyOptions(t){return this.elementProperties.get(t)??Et}static _$Ei(){if(this.hasOwnProperty(U("elementProperties")))return;let t=ae(this);t.finalize(),t.l!==void 0&&(this.l=[...t.l]),this.elementProperties=new Map(t.elementProperties)}static finalize(){if(this.hasOwnProperty(U("finalized")))return;if(this.finalized=!0,this._$Ei(),this.hasOwnProperty(U("properties"))){let e=this.properties,s=[...re(e),...ne(e)];for(let r of s)this.createProperty(r,e[r])}let t=this[Symbol.metadata];if(t!==null){let e=litPropertyMetadata.get(t);if(e!==void 0)for(let[s,r]of e)this.elementProperties.set(s,r)}this._$Eh=new Map;for(let[e,s]of this.elementProperties){let r=this._$Eu(e,s);r!==void 0&&this._$Eh.set(r,e)}this.elementStyles=this.finalizeStyles(this.styles)}static finalizeStyles(t){let e=[];if(Array.isArray(t)){let s=new Set(t.flat(1/0).reverse());for(let r of s)e.unshift(ot(r))}else t!==void 0&&e.push(ot(t));return e}static _$Eu(t,e){let s=e.attribute;return s===!1?void 0:typeof s=="string"?s:typeof t=="string"?t.toLowerCase():void 0}constructor(){super(),this._$Ep=void 0,this.isUpdatePending=!1,this.hasUpdated=!1,this._$Em=null,this._$Ev()}_$Ev(){this._$ES=new Promise(t=>this.enableUpdating=t),this._$AL=new Map,this._$E_(),this.requestUpdate(),this.constructor.l?.forEach(t=>t(this))}addController(t){(this._$EO??=new Set).add(t),this.renderRoot!==void 0&&this.isConnected&&t.hostConnected?.()}removeController(t){this._$EO?.delete(t)}_$E_(){let t=new Map,e=this.constructor.elementProperties;for(let s of e.keys())this.hasOwnProperty(s)&&(t.set(s,this[s]),delete this[s]);t.size>0&&(this._$Ep=t)}createRenderRoot(){let t=this.shadowRoot??this.attachShadow(this.constructor.shadowRootOptions);return At(t,this.constructor.elementStyles),t}connectedCallback(){this.renderRoot??=this.createRenderRoot(),this.enableUpdating(!0),this._$EO?.forEach(t=>t.hostConnected?.())}enableUpdating(t){}disconnectedCallback(){this._$EO?.forEach(t=>t.hostDisconnected?.())}attributeChangedCallback(t,e,s){this._$AK(t,s)}_$ET(t,e){let s=this.constructor.elementProperties.get(t),r=this.constructor._$Eu(t,s);if(r!==void 0&&s.reflect===!0){let n=(s.converter?.toAttribute!==void 0?s.converter:dt).toAttribute(e,s.type);this._$Em=t,n==null?this.removeAttribute(r):this.setAttribute(r,n),this._$Em=null}}_$AK(t,e){let s=this.constructor,r=s._$Eh.get(t);if(r!==void 0&&this._$Em!==r){let n=s.getPropertyOptions(r),d=typeof n.converter=="function"?{fromAttribute:n.converter}:n.converter?.fromAttribute!==void 0?n.converter:dt;this._$Em=r;let l=d.fromAttribute(e,n.type);this[r]=l??this._$Ej?.get(r)??l,this._$Em=null}}requestUpdate(t,e,s,r=!1,n){if(t!==void 0){let d=this.constructor;if(r===!1&&(n=this[t]),s??=d.getPropertyOptions(t),!((s.hasChanged??kt)(n,e)||s.useDefault&&s.reflect&&n===this._$Ej?.get(t)&&!this.hasAttribute(d._$Eu(t,s))))return;this.C(t,e,s)}this.isUpdatePending===!1&&(this._$ES=this._$EP())}C(t,e,{useDefault:s,reflect:r,wrapped:n},d){s&&!(this._$Ej??=new Map).has(t)&&(this._$Ej.set(t,d??e??this[t]),n!==!0||d!==void 0)||(this._$AL.has(t)||(this.hasUpdated||s||(e=void 0),this._$AL.set(t,e)),r===!0&&this._$Em!==t&&(this._$Eq??=new Set).add(t))}async _$EP(){this.isUpdatePending=!0;try{await this._$ES}catch(e){Promise.reject(e)}let t=this.scheduleUpdate();return t!=null&&await t,!this.isUpdatePending}scheduleUpdate(){return this.performUpdate()}performUpdate(){if(!this.isUpdatePending)return;if(!this.hasUpdated){if(this.renderRoot??=this.createRenderRoot(),this._$Ep){for(let[r,n]of this._$Ep)this[r]=n;this._$Ep=void 0}let s=this.constructor.elementProperties;if(s.size>0)for(let[r,n]of s){let{wrapped:d}=n,l=this[r];d!==!0||this._$AL.has(r)||l===void 0||this.C(r,void 0,n,l)}}let t=!1,e=this._$AL;try{t=this.shouldUpdate(e),t?(this.willUpdate(e),this._$EO?.forEach(s=>s.hostUpdate?.()),this.update(e)):this._$EM()}catch(s){throw t=!1,this._$EM(),s}t&&this._$AE(e)}willUpdate(t){}_$AE(t){this._$EO?.forEach(e=>e.hostUpdated?.()),this.hasUpdated||(this.hasUpdated=!0,this.firstUpdated(t)),this.updated(t)}_$EM(){this._$AL=new Map,this.isUpdatePending=!1}get updateComplete(){return this.getUpdateComplete()}getUpdateComplete(){return this._$ES}shouldUpdate(t){return!0}update(t){this._$Eq&&=this._$Eq.forEach(e=>this._$ET(e,this[e])),this._$EM()}updated(t){}firstUpdated(t){}};x.elementStyles=[],x.shadowRootOptions={mode:"open"},x[U("elementProperties")]=new Map,x[U("finalized")]=new Map,de?.({ReactiveElement:x}),(Z.reactiveElementVersions??=[]).push("2.1.2");var ft=globalThis,Ct=i=>i,G=ft.trustedTypes,Ot=G?G.createPolicy("lit-html",{createHTML:i=>i}):void 0,zt="$lit$",S=`lit$${Math.random().toFixed(9).slice(2)}$`,Ut="?"+S,le=`<${Ut}>`,N=document,H=()=>N.createComment(""),D=i=>i===null||typeof i!="object"&&typeof i!="function",mt=Array.isArray,ce=i=>mt(i)||typeof i?.[Symbol.iterator]=="function",lt=`[ 	
\f\r]`,I=/<(?:(!--|\/[^a-zA-Z])|(\/?[a-zA-Z][^>\s]*)|(\/?$))/g,Nt=/-->/g,Pt=/>/g,C=RegExp(`>|${lt}(?:([^\\s"'>=/]+)(${lt}*=${lt}*(?:[^ 	
\f\r"'\`<>=]|("|')|))|$)`,"g"),Tt=/'/g,Rt=/"/g,It=/^(?:script|style|textarea|title)$/i,$t=i=>(t,...e)=>({_$litType$:i,strings:t,values:e}),a=$t(1),gt=$t(2),ye=$t(3),P=Symbol.for("lit-noChange"),h=Symbol.for("lit-nothing"),Mt=new WeakMap,O=N.createTreeWalker(N,129);function Ht(i,t){if(!mt(i)||!i.hasOwnProperty("raw"))throw Error("invalid template strings array");return Ot!==void 0?Ot.createHTML(t):t}var he=(i,t)=>{let e=i.length-1,s=[],r,n=t===2?"<svg>":t===3?"<math>":"",d=I;for(let l=0;l<e;l++){let o=i[l],p,c,u=-1,f=0;for(;f<o.length&&(d.lastIndex=f,c=d.exec(o),c!==null);)f=d.lastIndex,d===I?c[1]==="!--"?d=Nt:c[1]!==void 0?d=Pt:c[2]!==void 0?(It.test(c[2])&&(r=RegExp("</"+c[2],"g")),d=C):c[3]!==void 0&&(d=C):d===C?c[0]===">"?(d=r??I,u=-1):c[1]===void 0?u=-2:(u=d.lastIndex-c[2].length,p=c[1],d=c[3]===void 0?C:c[3]==='"'?Rt:Tt):d===Rt||d===Tt?d=C:d===Nt||d===Pt?d=I:(d=C,r=void 0);let $=d===C&&i[l+1].startsWith("/>")?" ":"";n+=d===I?o+le:u>=0?(s.push(p),o.slice(0,u)+zt+o.slice(u)+S+$):o+S+(u===-2?l:$)}return[Ht(i,n+(i[e]||"<?>")+(t===2?"</svg>":t===3?"</math>":"")),s]},j=class i{constructor({strings:t,_$litType$:e},s){let r;this.parts=[];let n=0,d=0,l=t.length-1,o=this.parts,[p,c]=he(t,e);if(this.el=i.createElement(p,s),O.currentNode=this.el.content,e===2||e===3){let u=this.el.content.firstChild;u.replaceWith(...u.childNodes)}for(;(r=O.nextNode())!==null&&o.length<l;){if(r.nodeType===1){if(r.hasAttributes())for(let u of r.getAttributeNames())if(u.endsWith(zt)){let f=c[d++],$=r.getAttribute(u).split(S),J=/([.?@])?(.*)/.exec(f);o.push({type:1,index:n,name:J[2],strings:$,ctor:J[1]==="."?ht:J[1]==="?"?ut:J[1]==="@"?pt:R}),r.removeAttribute(u)}else u.startsWith(S)&&(o.push({type:6,index:n}),r.removeAttribute(u));if(It.test(r.tagName)){let u=r.textContent.split(S),f=u.length-1;if(f>0){r.textContent=G?G.emptyScript:"";for(let $=0;$<f;$++)r.append(u[$],H()),O.nextNode(),o.push({type:2,index:++n});r.append(u[f],H())}}}else if(r.nodeType===8)if(r.data===Ut)o.push({type:2,index:n});else{let u=-1;for(;(u=r.data.indexOf(S,u+1))!==-1;)o.push({type:7,index:n}),u+=S.length-1}n++}}static createElement(t,e){let s=N.createElement("template");return s.innerHTML=t,s}};function T(i,t,e=i,s){if(t===P)return t;let r=s!==void 0?e._$Co?.[s]:e._$Cl,n=D(t)?void 0:t._$litDirective$;return r?.constructor!==n&&(r?._$AO?.(!1),n===void 0?r=void 0:(r=new n(i),r._$AT(i,e,s)),s!==void 0?(e._$Co??=[])[s]=r:e._$Cl=r),r!==void 0&&(t=T(i,r._$AS(i,t.values),r,s)),t}var ct=class{constructor(t,e){this._$AV=[],this._$AN=void 0,this._$AD=t,this._$AM=e}get parentNode(){return this._$AM.parentNode}get _$AU(){return this._$AM._$AU}u(t){let{el:{content:e},parts:s}=this._$AD,r=(t?.creationScope??N).importNode(e,!0);O.currentNode=r;let n=O.nextNode(),d=0,l=0,o=s[0];for(;o!==void 0;){if(d===o.index){let p;o.type===2?p=new L(n,n.nextSibling,this,t):o.type===1?p=new o.ctor(n,o.name,o.strings,this,t):o.type===6&&(p=new _t(n,this,t)),this._$AV.push(p),o=s[++l]}d!==o?.index&&(n=O.nextNode(),d++)}return O.currentNode=N,r}p(t){let e=0;for(let s of this._$AV)s!==void 0&&(s.strings!==void 0?(s._$AI(t,s,e),e+=s.strings.length-2):s._$AI(t[e])),e++}},L=class i{get _$AU(){return this._$AM?._$AU??this._$Cv}constructor(t,e,s,r){this.type=2,this._$AH=h,this._$AN=void 0,this._$AA=t,this._$AB=e,this._$AM=s,this.options=r,this._$Cv=r?.isConnected??!0}get parentNode(){let t=this._$AA.parentNode,e=this._$AM;return e!==void 0&&t?.nodeType===11&&(t=e.parentNode),t}get startNode(){return this._$AA}get endNode(){return this._$AB}_$AI(t,e=this){t=T(this,t,e),D(t)?t===h||t==null||t===""?(this._$AH!==h&&this._$AR(),this._$AH=h):t!==this._$AH&&t!==P&&this._(t):t._$litType$!==void 0?this.$(t):t.nodeType!==void 0?this.T(t):ce(t)?this.k(t):this._(t)}O(t){return this._$AA.parentNode.insertBefore(t,this._$AB)}T(t){this._$AH!==t&&(this._$AR(),this._$AH=this.O(t))}_(t){this._$AH!==h&&D(this._$AH)?this._$AA.nextSibling.data=t:this.T(N.createTextNode(t)),this._$AH=t}$(t){let{values:e,_$litType$:s}=t,r=typeof s=="number"?this._$AC(t):(s.el===void 0&&(s.el=j.createElement(Ht(s.h,s.h[0]),this.options)),s);if(this._$AH?._$AD===r)this._$AH.p(e);else{let n=new ct(r,this),d=n.u(this.options);n.p(e),this.T(d),this._$AH=n}}_$AC(t){let e=Mt.get(t.strings);return e===void 0&&Mt.set(t.strings,e=new j(t)),e}k(t){mt(this._$AH)||(this._$AH=[],this._$AR());let e=this._$AH,s,r=0;for(let n of t)r===e.length?e.push(s=new i(this.O(H()),this.O(H()),this,this.options)):s=e[r],s._$AI(n),r++;r<e.length&&(this._$AR(s&&s._$AB.nextSibling,r),e.length=r)}_$AR(t=this._$AA.nextSibling,e){for(this._$AP?.(!1,!0,e);t!==this._$AB;){let s=Ct(t).nextSibling;Ct(t).remove(),t=s}}setConnected(t){this._$AM===void 0&&(this._$Cv=t,this._$AP?.(t))}},R=class{get tagName(){return this.element.tagName}get _$AU(){return this._$AM._$AU}constructor(t,e,s,r,n){this.type=1,this._$AH=h,this._$AN=void 0,this.element=t,this.name=e,this._$AM=r,this.options=n,s.length>2||s[0]!==""||s[1]!==""?(this._$AH=Array(s.length-1).fill(new String),this.strings=s):this._$AH=h}_$AI(t,e=this,s,r){let n=this.strings,d=!1;if(n===void 0)t=T(this,t,e,0),d=!D(t)||t!==this._$AH&&t!==P,d&&(this._$AH=t);else{let l=t,o,p;for(t=n[0],o=0;o<n.length-1;o++)p=T(this,l[s+o],e,o),p===P&&(p=this._$AH[o]),d||=!D(p)||p!==this._$AH[o],p===h?t=h:t!==h&&(t+=(p??"")+n[o+1]),this._$AH[o]=p}d&&!r&&this.j(t)}j(t){t===h?this.element.removeAttribute(this.name):this.element.setAttribute(this.name,t??"")}},ht=class extends R{constructor(){super(...arguments),this.type=3}j(t){this.element[this.name]=t===h?void 0:t}},ut=class extends R{constructor(){super(...arguments),this.type=4}j(t){this.element.toggleAttribute(this.name,!!t&&t!==h)}},pt=class extends R{constructor(t,e,s,r,n){super(t,e,s,r,n),this.type=5}_$AI(t,e=this){if((t=T(this,t,e,0)??h)===P)return;let s=this._$AH,r=t===h&&s!==h||t.capture!==s.capture||t.once!==s.once||t.passive!==s.passive,n=t!==h&&(s===h||r);r&&this.element.removeEventListener(this.name,this,s),n&&this.element.addEventListener(this.name,this,t),this._$AH=t}handleEvent(t){typeof this._$AH=="function"?this._$AH.call(this.options?.host??this.element,t):this._$AH.handleEvent(t)}},_t=class{constructor(t,e,s){this.element=t,this.type=6,this._$AN=void 0,this._$AM=e,this.options=s}get _$AU(){return this._$AM._$AU}_$AI(t){T(this,t)}};var ue=ft.litHtmlPolyfillSupport;ue?.(j,L),(ft.litHtmlVersions??=[]).push("3.3.3");var Dt=(i,t,e)=>{let s=e?.renderBefore??t,r=s._$litPart$;if(r===void 0){let n=e?.renderBefore??null;s._$litPart$=r=new L(t.insertBefore(H(),n),n,void 0,e??{})}return r._$AI(i),r};var vt=globalThis,g=class extends x{constructor(){super(...arguments),this.renderOptions={host:this},this._$Do=void 0}createRenderRoot(){let t=super.createRenderRoot();return this.renderOptions.renderBefore??=t.firstChild,t}update(t){let e=this.render();this.hasUpdated||(this.renderOptions.isConnected=this.isConnected),super.update(t),this._$Do=Dt(e,this.renderRoot,this.renderOptions)}connectedCallback(){super.connectedCallback(),this._$Do?.setConnected(!0)}disconnectedCallback(){super.disconnectedCallback(),this._$Do?.setConnected(!1)}render(){return P}};g._$litElement$=!0,g.finalized=!0,vt.litElementHydrateSupport?.({LitElement:g});var pe=vt.litElementPolyfillSupport;pe?.({LitElement:g});(vt.litElementVersions??=[]).push("4.2.2");var M="adaptive_modbus",jt="/adaptive-modbus";async function q(i){let t=await i.callWS({type:`${M}/entries`});return _e(t.entries||[])}function _e(i){return i.map(t=>{let e={};for(let s of t.devices)for(let r of s.registers||[])r.entity_id&&(e[r.uid]=r.entity_id);return{config_entry_id:t.config_entry_id,title:t.title,devices:t.devices.filter(s=>s.device_id).map(s=>({device_id:s.device_id,unit_id:s.unit_id,name:s.name})),entities:e}})}function Lt(i,t,e,s){return i.connection.subscribeMessage(s,{type:`${M}/subscribe`,view:t,...e})}function v(i,t){return!!i?.services?.[M]?.[t]}async function b(i,t,e={},s=!1){let r={type:"call_service",domain:M,service:t,service_data:e};s&&(r.return_response=!0);let n=await i.callWS(r);return s?n.response:n}function w(i,t,e={}){return i.callWS({type:`${M}/views`,view:t,...e})}function qt(i,t){return i.callWS({type:`${M}/refresh`,...t})}function Bt(i,t){if(i.device_id){for(let s of t){let r=s.devices.find(n=>n.device_id===i.device_id);if(r)return{conn:s,device:r}}return{conn:null,device:null,missing:`device ${i.device_id}`}}if(i.config_entry_id){let s=t.find(r=>r.config_entry_id===i.config_entry_id);return s?{conn:s,device:s.devices[0]||null}:{conn:null,device:null,missing:`connection ${i.config_entry_id}`}}let e=t[0]||null;return{conn:e,device:e?.devices[0]||null}}function E(i){return i?typeof i=="string"?i:i.message||i.error?.message||i.code||JSON.stringify(i):""}function Wt(i){history.pushState(null,"",i),window.dispatchEvent(new CustomEvent("location-changed",{detail:{replace:!1}}))}var X=["overview","registers","clusters","charts"],B=["health","donut","buttons","age","reason"],Y=["health","donut","buttons","age","reason"];function Ft(i){if(!i||typeof i!="object"||Array.isArray(i))throw new Error("Invalid configuration: expected a mapping");let t=i.view??"overview";if(!X.includes(t))throw new Error(`Unknown view "${t}": use one of ${X.join(", ")}`);if(i.device_id&&i.config_entry_id)throw new Error("Give either device_id or config_entry_id, not both");for(let s of["device_id","config_entry_id","title"])if(i[s]!==void 0&&typeof i[s]!="string")throw new Error(`${s} must be a string`);let e=i.show??Y;if(!Array.isArray(e))throw new Error("show must be a list");for(let s of e)if(!B.includes(s))throw new Error(`Unknown show option "${s}": use ${B.join(", ")}`);return{...i,view:t,show:[...e]}}function y(i){if(i==null||!Number.isFinite(i))return"\u2013";let t=Math.max(0,i),e=s=>String(Math.round(s*10)/10);return t<1?`${e(t)} s`:t<60?`${Math.round(t)} s`:t<3600?`${e(t/60)} min`:t<86400?`${e(t/3600)} h`:`${e(t/86400)} d`}function m(i,t=1){if(i==null||!Number.isFinite(i))return"\u2013";let e=10**t;return String(Math.round(i*e)/e)}function k(i,t=0){let e=m(i,t);return e==="\u2013"?e:`${e} %`}function Jt(i,t=1,e=3600){if(!Number.isFinite(i)||i<=0)return 0;let s=Math.log(t),r=Math.log(e),n=(Math.log(Math.min(Math.max(i,t),e))-s)/(r-s);return Math.round(Math.max(.04,n)*1e3)/10}function Kt(i,t=40,e=26){let s=(i||[]).reduce((l,o)=>l+(o.count||0),0);if(s===0)return[];let r=[],n=-Math.PI/2,d=(l,o)=>`${Vt(l*Math.cos(o))} ${Vt(l*Math.sin(o))}`;for(let l of i){if(!l.count)continue;let o=l.count/s;if(o>=.9999){let u=n+Math.PI,f=n+2*Math.PI;r.push({name:l.name,colour:l.colour,count:l.count,d:`M ${d(t,n)} A ${t} ${t} 0 1 1 ${d(t,u)} A ${t} ${t} 0 1 1 ${d(t,f)} L ${d(e,f)} A ${e} ${e} 0 1 0 ${d(e,u)} A ${e} ${e} 0 1 0 ${d(e,n)} Z`});break}let p=n+o*2*Math.PI,c=o>.5?1:0;r.push({name:l.name,colour:l.colour,count:l.count,d:`M ${d(t,n)} A ${t} ${t} 0 ${c} 1 ${d(t,p)} L ${d(e,p)} A ${e} ${e} 0 ${c} 0 ${d(e,n)} Z`}),n=p}return r}function Vt(i){return Math.round(i*1e3)/1e3}function Qt(i,t=[],e=400){if((!i||i.length===0)&&t.length===0)return[];let s=[...(i||[]).flatMap(o=>[o.address,o.end]),...t],r=Math.min(...s),n=Math.max(...s),d=new Set([...(i||[]).flatMap(o=>o.holes||[]),...t]),l=[];for(let o=r;o<=n&&l.length<e;o++){let p=i.find(c=>c.address<=o&&o<=c.end);l.push({address:o,kind:d.has(o)?"hole":p?"block":"gap"})}return l}function Zt(i,t=0){return i==="registers"?2+Math.ceil(t/2):i==="clusters"?6:5}function W(i){if(typeof i=="string")return i;let t=r=>r==null?"\u2013":typeof r=="number"?m(r,3):JSON.stringify(r),e=`${i.strategy??"?"}: ${i.parameter??"?"} of ${i.target??"?"} ${t(i.before)} \u2192 ${t(i.after)}`,s=i.predicted_gain===null||i.predicted_gain===void 0?"":`, predicted gain ${k(100*i.predicted_gain,1)}`;return`${e}${s}${i.reason?` (${i.reason})`:""}`}function Gt(i){let t=s=>s==null?"\u2013":typeof s=="object"?JSON.stringify(s):String(s),e=i.actor?.name??i.actor?.kind??"";return`${i.action} ${i.target}: ${t(i.before)} \u2192 ${t(i.after)} [${i.outcome}]${e?` by ${e}`:""}`}function Xt(i){let t=y,e=r=>r!=null,s=e(i.interval)?`fixed at ${t(i.interval)}`:e(i.min_interval)&&e(i.max_interval)?`between ${t(i.min_interval)} and ${t(i.max_interval)}`:e(i.min_interval)?`at least ${t(i.min_interval)}`:`at most ${t(i.max_interval)}`;return e(i.effective_interval)?`${s} (now ${t(i.effective_interval)})`:s}var V=A`
  :host {
    --am-muted: var(--secondary-text-color, #727272);
    --am-line: var(--divider-color, rgba(0, 0, 0, 0.12));
  }
  .muted { color: var(--am-muted); }
  .error { color: var(--error-color, #db4437); }
  .stats { display: flex; flex-wrap: wrap; gap: 8px 24px; }
  .stat .big { font-size: 1.6em; font-weight: 500; line-height: 1.2; }
  .stat .label { color: var(--am-muted); font-size: 0.85em; }
  .donut { display: flex; align-items: center; gap: 16px; flex-wrap: wrap; }
  .donut svg { width: 96px; height: 96px; flex: none; }
  .legend { display: grid; grid-template-columns: auto 1fr auto; gap: 2px 8px; font-size: 0.9em; }
  .swatch { width: 12px; height: 12px; border-radius: 3px; display: inline-block; margin-top: 3px; }
  .chip { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 0.85em; font-weight: 500; }
  .chip.ok { background: var(--success-color, #43a047); color: #fff; }
  .chip.degraded { background: var(--warning-color, #ffa600); color: #000; }
  .chip.down { background: var(--error-color, #db4437); color: #fff; }
  table { width: 100%; border-collapse: collapse; font-size: 0.9em; }
  th, td { text-align: left; padding: 4px 6px; border-bottom: 1px solid var(--am-line); vertical-align: top; }
  th { color: var(--am-muted); font-weight: 500; }
  td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
  .table-wrap { overflow-x: auto; }
  .bar { height: 8px; background: var(--am-line); border-radius: 4px; min-width: 40px; }
  .bar > div { height: 100%; border-radius: 4px; }
  .strip { display: flex; flex-wrap: wrap; gap: 1px; margin: 4px 0 8px; }
  .cell { width: 10px; height: 14px; border-radius: 2px; }
  .cell.block { background: var(--primary-color, #03a9f4); }
  .cell.gap { background: var(--am-line); }
  .cell.hole { background: var(--error-color, #db4437); }
  .hole-tag { display: inline-block; padding: 0 6px; border-radius: 8px; background: var(--error-color, #db4437); color: #fff; margin: 1px; }
  button.am {
    font: inherit; font-size: 0.9em; cursor: pointer; border-radius: 4px; padding: 6px 12px;
    border: 1px solid var(--primary-color, #03a9f4); background: transparent; color: var(--primary-color, #03a9f4);
  }
  button.am.primary { background: var(--primary-color, #03a9f4); color: var(--text-primary-color, #fff); }
  button.am[disabled] { opacity: 0.5; cursor: default; }
  select, input { font: inherit; color: var(--primary-text-color); background: var(--card-background-color, #fff);
    border: 1px solid var(--am-line); border-radius: 4px; padding: 4px 6px; }
  pre { white-space: pre-wrap; word-break: break-word; font-size: 0.85em; }
`;function _(i,t,e){return a`<div class="stat" data-stat=${e}><div class="big">${t}</div><div class="label">${i}</div></div>`}function tt(i){return i?a`<div class="health" data-health=${i.status}>
    <span class="chip ${i.status}">${i.status}</span>
    ${i.problems?.length?a`<ul class="problems">${i.problems.map(t=>a`<li>${t}</li>`)}</ul>`:a`<span class="muted">no problems</span>`}
  </div>`:h}function F(i){let t=Kt(i),e=(i||[]).reduce((s,r)=>s+(r.count||0),0);return a`<div class="donut" data-donut>
    <svg viewBox="-42 -42 84 84" role="img" aria-label="interval classes">
      ${t.map(s=>gt`<path d=${s.d} fill=${s.colour}><title>${s.name}: ${s.count}</title></path>`)}
      ${gt`<text x="0" y="5" text-anchor="middle" font-size="14" fill="currentColor">${e}</text>`}
    </svg>
    <div class="legend">
      ${(i||[]).map(s=>a`<span class="swatch" style="background:${s.colour}"></span>
          <span>${s.name}${s.upper!==null&&s.upper!==void 0?a` <span class="muted">≤ ${y(s.upper)}</span>`:h}</span>
          <span class="num" data-class=${s.name}>${s.count}</span>`)}
    </div>
  </div>`}function et(i){let t=Jt(i.effective_interval),e=`${y(i.effective_interval)} (${i.interval_class}): ${i.reason}${i.detail?` \u2013 ${i.detail}`:""}`;return a`<div class="bar" title=${e} data-reason=${i.reason??""}>
    <div style="width:${t}%;background:${i.colour}"></div>
  </div>`}function st(i,t={},e=null){if(!i)return h;let s=i.tables.filter(n=>e===null||n.unit_id===e),r=new Set(s.map(n=>`${n.unit_id}.${n.table}`));for(let n of Object.keys(t)){let[d,l]=n.split(".");!r.has(n)&&(e===null||Number(d)===e)&&s.push({unit_id:Number(d),table:l,blocks:[]})}return s.length===0?a`<p class="muted">No blocks planned yet.</p>`:s.map(n=>{let d=t[`${n.unit_id}.${n.table}`]||[],l=Qt(n.blocks,d);return a`<section class="cluster" data-unit=${n.unit_id} data-table=${n.table}>
      <h4>Unit ${n.unit_id} · ${n.table} registers</h4>
      <div class="strip" aria-label="address strip">
        ${l.map(o=>a`<span class="cell ${o.kind}" data-address=${o.address}
            title="${n.table} ${o.address}: ${o.kind==="hole"?"learned hole":o.kind==="block"?"read":"not read"}"></span>`)}
      </div>
      ${d.length?a`<div class="holes">Learned holes: ${d.map(o=>a`<span class="hole-tag" data-hole="${n.unit_id}.${n.table}:${o}">${o}</span>`)}</div>`:h}
      <div class="table-wrap"><table>
        <thead><tr><th>Block</th><th class="num">Count</th><th class="num">Members</th>
          <th class="num">Riders</th><th>Holes</th><th class="num">Interval</th><th class="num">Reads</th></tr></thead>
        <tbody>${n.blocks.map(o=>a`<tr>
          <td>${o.address}–${o.end}</td><td class="num">${o.count}</td>
          <td class="num" title=${o.members.join(", ")}>${o.members.length}</td>
          <td class="num" title=${o.riders.join(", ")}>${o.riders.length}</td>
          <td>${o.holes.length?o.holes.map(p=>a`<span class="hole-tag">${p}</span>`):a`<span class="muted">–</span>`}</td>
          <td class="num">${y(o.interval_spread?.min)}${o.interval_spread?.max!==o.interval_spread?.min?a`–${y(o.interval_spread?.max)}`:h}</td>
          <td class="num">${o.reads}</td></tr>`)}</tbody>
      </table></div>
    </section>`})}var fe=1e4,Yt={overview:"Overview",registers:"Registers",clusters:"Clusters",charts:"Charts"},it=class extends g{static properties={hass:{attribute:!1},_config:{state:!0},_targets:{state:!0},_data:{state:!0},_error:{state:!0},_busy:{state:!0},_proposals:{state:!0},_message:{state:!0}};static getConfigElement(){return document.createElement("adaptive-modbus-card-editor")}static getStubConfig(){return{view:"overview"}}setConfig(t){this._config=Ft(t),this._data=void 0,this._proposals=void 0,this.isConnected&&this.hass&&this._load()}getCardSize(){return Zt(this._config?.view,this._data?.device?.registers?.length??0)}getGridOptions(){let t=this._config?.view;return{columns:12,min_columns:6,rows:t==="registers"||t==="clusters"?"auto":5,min_rows:3}}connectedCallback(){super.connectedCallback(),this._timer=setInterval(()=>this._load(),fe),this.hass&&this._config&&this._load()}disconnectedCallback(){super.disconnectedCallback(),clearInterval(this._timer),this._unsubscribe()}_unsubscribe(){let t=this._subscription;this._subscription=void 0,this._subscribedTo=void 0,t&&t.then(e=>e()).catch(()=>{})}_subscribe(t){this._subscribedTo!==t.device_id&&(this._unsubscribe(),this._subscribedTo=t.device_id,this._subscription=Lt(this.hass,"device",{device_id:t.device_id},e=>{this._data&&this._subscribedTo===t.device_id&&(this._data={...this._data,device:e,fetchedAt:Date.now()})}),this._subscription.catch(e=>{this._error=E(e),this._subscribedTo=void 0}))}updated(t){t.has("hass")&&!t.get("hass")&&this._config&&this._load()}async _load(){if(!(!this.hass||!this._config||this._loading)){this._loading=!0;try{this._targets=await q(this.hass);let{conn:t,device:e,missing:s}=Bt(this._config,this._targets);if(s)throw new Error(`Not found: ${s} (removed, or not loaded)`);if(!t)throw new Error("No Adaptive Modbus connection is loaded");let r={config_entry_id:t.config_entry_id},n=this._config.view,d={conn:t,device:e,fetchedAt:Date.now()};if(n==="overview")d.system=await w(this.hass,"system",r),this._config.device_id&&e&&(d.device=await w(this.hass,"device",{device_id:e.device_id}));else if(n==="registers"){if(!e)throw new Error(`${t.title} has no device`);d.device=await w(this.hass,"device",{device_id:e.device_id}),this._subscribe(e)}else if(n==="clusters"){d.cluster=await w(this.hass,"cluster",r);let l=this._config.device_id?[e]:t.devices;d.holes={};for(let o of l){let p=await w(this.hass,"device",{device_id:o.device_id,period:.1});for(let[c,u]of Object.entries(p.holes||{}))d.holes[`${o.unit_id}.${c}`]=u}}this._data=d,this._error=void 0}catch(t){this._error=E(t)}finally{this._loading=!1}}}_title(){if(this._config.title)return this._config.title;let t=this._data;return`${(this._config.device_id?t?.device&&t.conn?.devices.find(s=>s.unit_id===t.device.unit_id)?.name:t?.conn?.title)||"Adaptive Modbus"} \xB7 ${Yt[this._config.view]}`}render(){return this._config?a`<ha-card>
      <div class="card-header"><div class="name">${this._title()}</div></div>
      <div class="card-content" data-view=${this._config.view}>
        ${this._error?a`<p class="error" data-error>${this._error}</p>`:h}
        ${this._data?this._renderView():this._error?h:a`<p class="muted">Loading…</p>`}
        ${this._message?a`<p class="message" data-message>${this._message}</p>`:h}
        ${this._renderProposals()}
      </div>
      ${this._renderButtons()}
    </ha-card>`:h}_renderView(){switch(this._config.view){case"registers":return this._renderRegisters();case"clusters":return st(this._data.cluster,this._data.holes,this._config.device_id?this._data.device?.unit_id??this._data.conn.devices.find(t=>t.device_id===this._config.device_id)?.unit_id??null:null);case"charts":return this._renderCharts();default:return this._renderOverview()}}_show(t){return this._config.show.includes(t)}_renderOverview(){let t=this._data.system,e=this._data.device?.interval_classes??t.interval_classes;return a`
      <div class="stats">
        ${_("requests / min",m(t.now.requests_per_minute,1),"requests_per_minute")}
        ${_("saving vs fixed polling",k(t.now.saving_vs_fixed_percent),"saving_vs_fixed")}
        ${_("registers / request",m(t.now.registers_per_request,1),"registers_per_request")}
        ${_("bus busy",k(t.now.bus_utilisation_percent,1),"bus")}
      </div>
      ${this._show("health")?a`<h4>Health</h4>${tt(t.health)}`:h}
      ${this._show("donut")?a`<h4>Interval classes</h4>${F(e)}`:h}`}_renderRegisters(){let t=this._data.device,e=this._data.conn.entities,s=(Date.now()-this._data.fetchedAt)/1e3;return a`<div class="table-wrap"><table class="registers">
      <thead><tr><th>Register</th><th class="num">Value</th><th>Interval</th>
        ${this._show("age")?a`<th class="num">Age</th>`:h}</tr></thead>
      <tbody>${t.registers.map(r=>{let n=e[r.uid],d=n?this.hass.states[n]:void 0,l=d?.attributes.friendly_name??r.key,o=d?this.hass.formatEntityState?this.hass.formatEntityState(d):d.state:r.value===null?"\u2013":String(r.value);return a`<tr class="register ${r.enabled?"":"muted"}" data-uid=${r.uid}
            data-entity=${n??""} data-state=${d?d.state:""}>
          <td class="name" title=${`${r.table} ${r.address}`}>${l}</td>
          <td class="num value">${o}</td>
          <td class="interval" title=${this._show("reason")?`${r.reason}${r.detail?`: ${r.detail}`:""}`:""}>
            ${et(r)}<span class="muted">${y(r.effective_interval)}</span></td>
          ${this._show("age")?a`<td class="num age">${r.age===null?"\u2013":y(r.age+s)}</td>`:h}
        </tr>`})}</tbody></table></div>`}_renderCharts(){let t=Object.values(this.hass.entities||{}).filter(e=>e.platform==="adaptive_modbus"&&e.entity_id.startsWith("image.")).filter(e=>!this._config.device_id||e.device_id===this._config.device_id).map(e=>this.hass.states[e.entity_id]).filter(Boolean);return t.length===0?a`<p class="muted" data-no-charts>No charts yet: this version of the integration has no chart images.</p>`:t.map(e=>a`<figure><img style="max-width:100%" alt=${e.attributes.friendly_name??e.entity_id}
      src=${e.attributes.entity_picture}><figcaption class="muted">${e.attributes.friendly_name}</figcaption></figure>`)}_renderProposals(){let t=this._proposals;if(!t)return h;let e=Array.isArray(t.proposals)?t.proposals:null;return a`<div class="proposals" data-proposals>
      <h4>Quick optimization (dry run)</h4>
      ${e===null?a`<pre>${JSON.stringify(t,null,2)}</pre>`:e.length===0?a`<p class="muted" data-no-proposals>No changes proposed${t.note?`: ${t.note}`:"."}</p>`:a`<ul>${e.map(s=>a`<li data-proposal=${s.id??""}>${W(s)}</li>`)}</ul>`}
      <button class="am primary" data-action="apply" ?disabled=${this._busy||e!==null&&e.length===0} @click=${this._apply}>Apply</button>
      <button class="am" @click=${()=>{this._proposals=void 0}}>Discard</button>
    </div>`}_renderButtons(){if(!this.hass?.user?.is_admin||!this._show("buttons"))return h;let t=v(this.hass,"run_optimization");return a`<div class="card-actions">
      <button class="am" data-action="refresh" ?disabled=${this._busy} @click=${this._refresh}>Refresh now</button>
      <button class="am" data-action="optimize" ?disabled=${this._busy||!t}
        title=${t?"Dry run first; apply from the result":"This version has no run_optimization service"}
        @click=${this._dryRun}>Run quick optimization (dry run)</button>
      <button class="am" data-action="panel" @click=${()=>Wt(jt)}>Open panel</button>
    </div>`}_entryData(){return this._data?.conn?{config_entry_id:this._data.conn.config_entry_id}:{}}async _action(t){this._busy=!0,this._message=void 0;try{await t()}catch(e){this._message=`Failed: ${E(e)}`}finally{this._busy=!1}}_refresh=()=>this._action(async()=>{let t=this._config.device_id?{device_id:this._config.device_id}:this._entryData();await qt(this.hass,t),await this._load(),this._message="Refreshed."});_dryRun=()=>this._action(async()=>{this._proposals=await b(this.hass,"run_optimization",{...this._entryData(),mode:"quick",dry_run:!0},!0)??{}});_apply=()=>this._action(async()=>{let t=await b(this.hass,"run_optimization",{...this._entryData(),mode:"quick",dry_run:!1},!0);this._proposals=void 0;let e=t?.applied??[];this._message=e.length?`Applied: ${e.join(", ")}`:`Nothing applied${t?.note?`: ${t.note}`:"."}`,await this._load()});static styles=[V,A`
    ha-card { overflow: hidden; }
    .card-content { padding-top: 0; }
    h4 { margin: 12px 0 6px; font-weight: 500; }
    .card-actions { display: flex; flex-wrap: wrap; gap: 8px; padding: 8px 16px; border-top: 1px solid var(--am-line); }
    td.interval { min-width: 90px; }
    td.interval .bar { margin: 5px 0 2px; }
    .problems { margin: 4px 0; padding-left: 20px; }
  `]},rt=class extends g{static properties={hass:{attribute:!1},_config:{state:!0},_targets:{state:!0}};setConfig(t){this._config={...t}}updated(t){t.has("hass")&&this.hass&&!this._targets&&q(this.hass).then(e=>{this._targets=e},()=>{this._targets=[]})}_changed(t){let e={...this._config,...t};for(let[s,r]of Object.entries(e))(r===void 0||r==="")&&delete e[s];this._config=e,this.dispatchEvent(new CustomEvent("config-changed",{detail:{config:e},bubbles:!0,composed:!0}))}_target(t){let[e,s]=t.target.value.split(":");this._changed({device_id:e==="device"?s:void 0,config_entry_id:e==="entry"?s:void 0})}_toggle(t,e){let s=new Set(this._config.show??Y);e?s.add(t):s.delete(t),this._changed({show:B.filter(r=>s.has(r))})}render(){if(!this._config)return h;let t=this._config.device_id?`device:${this._config.device_id}`:this._config.config_entry_id?`entry:${this._config.config_entry_id}`:"",e=this._config.show??Y;return a`<div class="editor">
      <label>Connection or device
        <select data-field="target" @change=${this._target}>
          <option value="" ?selected=${t===""}>The only connection</option>
          ${(this._targets||[]).map(s=>a`
            <option value="entry:${s.config_entry_id}" ?selected=${t===`entry:${s.config_entry_id}`}>${s.title}</option>
            ${s.devices.map(r=>a`<option value="device:${r.device_id}" ?selected=${t===`device:${r.device_id}`}>
              ${s.title} › ${r.name} (unit ${r.unit_id})</option>`)}`)}
        </select></label>
      <label>View
        <select data-field="view" @change=${s=>this._changed({view:s.target.value})}>
          ${X.map(s=>a`<option value=${s} ?selected=${(this._config.view??"overview")===s}>${Yt[s]}</option>`)}
        </select></label>
      <label>Title <input data-field="title" .value=${this._config.title??""}
        @change=${s=>this._changed({title:s.target.value||void 0})}></label>
      <fieldset><legend>Show</legend>
        ${B.map(s=>a`<label class="check"><input type="checkbox" data-show=${s}
          .checked=${e.includes(s)} @change=${r=>this._toggle(s,r.target.checked)}> ${s}</label>`)}
      </fieldset>
    </div>`}static styles=[V,A`
    .editor { display: grid; gap: 12px; }
    label { display: grid; gap: 4px; }
    label.check { display: inline-flex; gap: 4px; margin-right: 12px; align-items: center; }
    fieldset { border: 1px solid var(--am-line); border-radius: 4px; }
  `]};var me=[["system","System"],["devices","Devices"],["clusters","Clusters"],["optimization","Optimization"],["faults","Holes, quarantine, pins"],["export","Export"]],bt=["run_optimization","get_optimization_statistics","rollback_optimization","set_strategy_parameters"],nt=class extends g{static properties={hass:{attribute:!1},narrow:{type:Boolean},panel:{attribute:!1},_tab:{state:!0},_targets:{state:!0},_entryId:{state:!0},_deviceId:{state:!0},_views:{state:!0},_stats:{state:!0},_error:{state:!0},_message:{state:!0},_lastRun:{state:!0}};constructor(){super(),this._tab="system",this._views={}}connectedCallback(){super.connectedCallback(),this._timer=setInterval(()=>this._load(),15e3)}disconnectedCallback(){super.disconnectedCallback(),clearInterval(this._timer)}updated(t){t.has("hass")&&this.hass&&!t.get("hass")&&this._load()}get _conn(){return this._targets?.find(t=>t.config_entry_id===this._entryId)??this._targets?.[0]}async _load(){if(!(!this.hass||this._loading)){this._loading=!0;try{this._targets=await q(this.hass);let t=this._conn;if(!t)throw new Error("No Adaptive Modbus connection is loaded");this._entryId=t.config_entry_id;let e={config_entry_id:t.config_entry_id},s={system:await w(this.hass,"system",e),cluster:await w(this.hass,"cluster",e),devices:{}};for(let r of t.devices)s.devices[r.device_id]=await w(this.hass,"device",{device_id:r.device_id});this._views=s,(!this._deviceId||!s.devices[this._deviceId])&&(this._deviceId=t.devices[0]?.device_id),(this._tab==="optimization"||this._tab==="faults")&&await this._loadStats(),this._error=void 0}catch(t){this._error=E(t)}finally{this._loading=!1}}}async _loadStats(){v(this.hass,"get_optimization_statistics")&&(this._stats=await b(this.hass,"get_optimization_statistics",{config_entry_id:this._entryId},!0))}async _action(t,e){this._message=void 0;try{let s=await e();this._message=`${t}: done${s!=null?` \u2013 ${JSON.stringify(s)}`:""}`,await this._load()}catch(s){this._message=`${t} failed: ${E(s)}`}}render(){if(!this.hass)return h;if(!this.hass.user?.is_admin)return a`<p class="error">The Adaptive Modbus panel is for administrators.</p>`;let t=this._conn;return a`
      <div class="toolbar">
        <ha-menu-button .hass=${this.hass} .narrow=${this.narrow}></ha-menu-button>
        <div class="title">Adaptive Modbus</div>
        ${this._targets?.length>1?a`<select @change=${e=>{this._entryId=e.target.value,this._load()}}>
          ${this._targets.map(e=>a`<option value=${e.config_entry_id} ?selected=${e===t}>${e.title}</option>`)}</select>`:h}
      </div>
      <nav class="tabs">${me.map(([e,s])=>a`<button class="tab ${this._tab===e?"active":""}" data-tab=${e}
        @click=${()=>{this._tab=e,(e==="optimization"||e==="faults")&&this._loadStats().catch(r=>{this._error=E(r)})}}>${s}</button>`)}</nav>
      <main>
        ${this._error?a`<p class="error" data-error>${this._error}</p>`:h}
        ${this._message?a`<p class="message" data-message>${this._message}</p>`:h}
        ${this._views.system?this._renderTab(t):a`<p class="muted">Loading…</p>`}
      </main>`}_renderTab(t){switch(this._tab){case"devices":return this._renderDevices(t);case"clusters":return this._renderClusters(t);case"optimization":return this._renderOptimization();case"faults":return this._renderFaults(t);case"export":return this._renderExport();default:return this._renderSystem(t)}}_renderSystem(t){let e=this._views.system;return a`<section class="card" data-section="system">
      <h2>${t.title}</h2>
      <div class="stats">
        ${_("requests / min",m(e.now.requests_per_minute,1),"requests_per_minute")}
        ${_("fixed polling would need",m(e.now.fixed_requests_per_minute,1),"fixed")}
        ${_("saving vs fixed",k(e.now.saving_vs_fixed_percent),"saving_vs_fixed")}
        ${_("saving vs static blocks",k(e.now.saving_vs_static_blocks_percent),"saving_vs_static")}
        ${_("registers / request",m(e.now.registers_per_request,1),"rpr")}
        ${_("error rate",k(e.now.error_rate_percent,1),"errors")}
        ${_("mean latency",`${m(e.now.mean_latency_ms,1)} ms`,"latency")}
        ${_("registers",`${e.registers.enabled} / ${e.registers.total}`,"registers")}
      </div>
      <h3>Health</h3>${tt(e.health)}
      <h3>Interval classes</h3>${F(e.interval_classes)}
      <h3>Recent errors</h3>
      ${e.errors.length?a`<div class="table-wrap"><table><tr><th>When</th><th>Kind</th><th>Unit</th><th>Address</th><th>Message</th></tr>
        ${e.errors.slice(-20).reverse().map(s=>a`<tr><td>${new Date(s.at*1e3).toLocaleTimeString()}</td><td>${s.kind}</td>
          <td>${s.unit_id??"\u2013"}</td><td>${s.table??""} ${s.address??""}</td><td>${s.message}</td></tr>`)}</table></div>`:a`<p class="muted">None in the period.</p>`}
    </section>`}_renderDevices(t){let e=this._views.devices[this._deviceId];return a`<section class="card" data-section="devices">
      <select @change=${s=>{this._deviceId=s.target.value}}>
        ${t.devices.map(s=>a`<option value=${s.device_id} ?selected=${s.device_id===this._deviceId}>${s.name} (unit ${s.unit_id})</option>`)}
      </select>
      ${e?a`<div class="stats">
          ${_("requests",e.requests,"requests")}${_("registers read",e.registers_read,"read")}
          ${_("errors",e.errors,"errors")}</div>
        ${F(e.interval_classes)}
        <div class="table-wrap"><table>
          <tr><th>Register</th><th>Address</th><th class="num">Value</th><th>Interval</th><th>Reason</th>
            <th class="num">Reads</th><th class="num">Changes</th><th class="num">Errors</th><th class="num">Tolerance</th><th class="num">Noise</th></tr>
          ${e.registers.map(s=>a`<tr data-uid=${s.uid}>
            <td>${this.hass.states[t.entities[s.uid]]?.attributes.friendly_name??s.key}</td>
            <td>${s.table} ${s.address}</td><td class="num">${s.value??"\u2013"}</td>
            <td>${et(s)}${y(s.effective_interval)}</td>
            <td title=${s.detail??""}>${s.reason}</td><td class="num">${s.reads}</td><td class="num">${s.changes}</td>
            <td class="num">${s.errors}</td><td class="num">${m(s.tolerance,3)}</td><td class="num">${m(s.noise,3)}</td></tr>`)}
        </table></div>`:a`<p class="muted">No device.</p>`}
    </section>`}_holes(t){let e={};for(let s of t.devices)for(let[r,n]of Object.entries(this._views.devices[s.device_id]?.holes||{}))e[`${s.unit_id}.${r}`]=n;return e}_renderClusters(t){let e=this._views.cluster;return a`<section class="card" data-section="clusters">
      <p class="muted">Cost model: ${m(1e3*e.cost_model.request_overhead,1)} ms per request,
        ${m(1e3*e.cost_model.per_register,2)} ms per register; merging across a gap pays up to
        ${e.cost_model.break_even_gap_registers} registers.</p>
      ${st(e,this._holes(t))}
    </section>`}_renderOptimization(){if(bt.filter(c=>!v(this.hass,c)).length===bt.length)return a`<section class="card" data-section="optimization"><p class="muted" data-no-optimizer>
        This version of the integration has no optimization services (${bt.join(", ")}).</p></section>`;let e=this._stats||{},s=e.optimizer||{},r={config_entry_id:this._entryId},n=[...e.audit??[]].reverse(),d=new Set((s.in_force??[]).map(c=>c.audit_id)),l=[...s.pending_evaluations??[],...(s.awaiting_approval??[]).map(c=>({proposal:c,awaiting:!0}))],o=Object.entries(s.strategies??{}),p=c=>this._action(c?"Dry run":"Quick optimization",async()=>{let u=await b(this.hass,"run_optimization",{...r,mode:"quick",dry_run:c},!0);return this._lastRun=u,c?`${u.proposals?.length??0} proposals`:`applied ${u.applied?.length??0}`});return a`<section class="card" data-section="optimization">
      <div class="actions">
        <button class="am" ?disabled=${!v(this.hass,"run_optimization")} @click=${()=>p(!0)}>Quick optimization (dry run)</button>
        <button class="am primary" ?disabled=${!v(this.hass,"run_optimization")} @click=${()=>p(!1)}>Run quick optimization</button>
      </div>
      ${this._lastRun?a`<h3>Last run (${this._lastRun.dry_run?"dry run":"applied"})</h3>
        ${this._lastRun.proposals?.length?a`<ul>${this._lastRun.proposals.map(c=>a`<li data-proposal>${W(c)}</li>`)}</ul>`:a`<p class="muted">No proposals${this._lastRun.note?`: ${this._lastRun.note}`:"."}</p>`}`:h}
      <p class="muted">Automatic loop ${(e.automatic??s.enabled)===!1?"off":"on"}${e.goal?`, goal ${e.goal}`:""}.</p>
      <h3>Strategies</h3>
      ${o.length?a`<div class="table-wrap"><table><tr><th>Strategy</th><th>Record</th><th>Parameters</th></tr>${o.map(([c,u])=>a`<tr>
        <td>${c}</td><td>${Object.entries(u).filter(([f])=>f!=="parameters").map(([f,$])=>`${f}: ${typeof $=="object"?JSON.stringify($):$}`).join(", ")}</td>
        <td>${this._renderParams(c,u.parameters??{})}</td></tr>`)}</table></div>`:a`<p class="muted">None reported.</p>`}
      <h3>Pending evaluations</h3>
      ${l.length?a`<ul>${l.map(c=>a`<li>${W(c.proposal??c)}${c.awaiting?a` <span class="chip degraded">awaiting approval</span>`:h}</li>`)}</ul>`:a`<p class="muted">None.</p>`}
      <h3>Audit log</h3>
      ${n.length?a`<div class="table-wrap"><table><tr><th>When</th><th>Change</th><th></th></tr>${n.map(c=>a`<tr data-audit=${c.id}>
        <td>${c.at?new Date(c.at*1e3).toLocaleString():"\u2013"}</td><td>${Gt(c)}</td>
        <td>${d.has(c.id)?a`<button class="am" data-action="rollback" ?disabled=${!v(this.hass,"rollback_optimization")}
          @click=${()=>this._action("Rollback",()=>b(this.hass,"rollback_optimization",{...r,audit_id:c.id},!0))}>Roll back</button>`:h}</td></tr>`)}</table></div>`:a`<p class="muted">No optimization applied yet.</p>`}
    </section>`}_renderParams(t,e){return Object.keys(e).length?a`<form data-strategy=${t} @submit=${s=>{s.preventDefault(),this._saveParams(t,e,s.target)}}>
      ${Object.entries(e).map(([s,r])=>typeof r=="boolean"?a`<label class="param">${s} <input name=${s} type="checkbox" .checked=${r}></label>`:a`<label class="param">${s}
        <input name=${s} type=${typeof r=="number"?"number":"text"} step="any" .value=${String(r)} required></label>`)}
      <button class="am" type="submit" ?disabled=${!v(this.hass,"set_strategy_parameters")}>Save</button>
    </form>`:a`<span class="muted">–</span>`}_saveParams(t,e,s){let r={};for(let[n,d]of Object.entries(e)){if(typeof d=="boolean"){r[n]=s.elements[n].checked;continue}let l=s.elements[n].value;if(typeof d=="number"){let o=Number(l);if(l.trim()===""||!Number.isFinite(o)){this._message=`${t}.${n}: "${l}" is not a number`;return}r[n]=o}else r[n]=l}this._action(`Save ${t} parameters`,()=>b(this.hass,"set_strategy_parameters",{config_entry_id:this._entryId,strategy:t,parameters:r},!0))}_renderFaults(t){let e=this._views.system,s=this._holes(t),r=Object.entries(this._stats?.pins??{}),n=v(this.hass,"reset_learning"),d=l=>this._action(`Reset learning (${l})`,()=>b(this.hass,"reset_learning",{config_entry_id:this._entryId},!0));return a`<section class="card" data-section="faults">
      <h3>Learned holes</h3>
      ${Object.keys(s).length?a`<ul>${Object.entries(s).map(([l,o])=>{let[p,c]=l.split(".");return a`<li>Unit ${p}, ${c}: ${o.map(u=>a`<span class="hole-tag" data-hole="${p}.${c}:${u}">${u}</span>`)}</li>`})}</ul>`:a`<p class="muted">None.</p>`}
      <button class="am" ?disabled=${!n} @click=${()=>d("holes")} title="reset_learning: forgets what the connection learned (holes, limits, intervals)">Reset learning</button>
      <h3>Quarantine</h3>
      ${e.health.quarantined.length?a`<ul>${e.health.quarantined.map(l=>a`<li>${l}</li>`)}</ul>`:a`<p class="muted">None.</p>`}
      <h3>Pins</h3>
      ${r.length?a`<ul>${r.map(([l,o])=>a`<li data-pin=${l}>${this.hass.states[o.entity_id]?.attributes.friendly_name??l}:
        ${Xt(o)}</li>`)}</ul>`:a`<p class="muted" data-no-pins>None.</p>`}
      ${r.length&&v(this.hass,"set_register_interval")?a`<button class="am" data-action="unpin" @click=${()=>this._action("Unpin",()=>b(this.hass,"set_register_interval",{entity_id:r.map(([l,o])=>o.entity_id??t.entities[l]).filter(Boolean),unpin:!0},!0))}>Unpin all</button>`:h}
      ${n?h:a`<p class="muted">Reset actions need the reset_learning service, which this version does not have.</p>`}
    </section>`}_renderExport(){return a`<section class="card" data-section="export">
      <p>Every view of this connection as one JSON file (schema version ${this._views.system?1:"\u2013"}).</p>
      <button class="am primary" data-action="download" @click=${this._download}>Download JSON</button>
      <button class="am" @click=${()=>this._action("Export to file",()=>b(this.hass,"export_visualization",{config_entry_id:this._entryId},!0))}>
        Write export file on the server</button>
    </section>`}_download=()=>{let t=this._conn,e={connection:t.title,system:this._views.system,cluster:this._views.cluster,devices:Object.values(this._views.devices)},s=URL.createObjectURL(new Blob([JSON.stringify(e,null,2)],{type:"application/json"})),r=document.createElement("a");r.href=s,r.download=`adaptive_modbus_${t.title.replace(/\W+/g,"_").toLowerCase()}.json`,r.click(),setTimeout(()=>URL.revokeObjectURL(s),1e3)};static styles=[V,A`
    :host { display: block; background: var(--primary-background-color); color: var(--primary-text-color); min-height: 100vh;
      font-family: var(--paper-font-body1_-_font-family, var(--ha-font-family-body, Roboto, sans-serif)); }
    .toolbar { display: flex; align-items: center; gap: 12px; height: var(--header-height, 56px); padding: 0 12px;
      background: var(--app-header-background-color, var(--primary-color)); color: var(--app-header-text-color, #fff); }
    .toolbar .title { font-size: 20px; flex: 1; }
    .tabs { display: flex; overflow-x: auto; gap: 4px; padding: 8px 12px 0; border-bottom: 1px solid var(--am-line); }
    .tab { font: inherit; background: none; border: none; padding: 8px 12px; cursor: pointer; color: var(--am-muted); border-bottom: 2px solid transparent; white-space: nowrap; }
    .tab.active { color: var(--primary-color); border-bottom-color: var(--primary-color); }
    main { padding: 16px; max-width: 1100px; margin: 0 auto; }
    .card { background: var(--card-background-color, #fff); border-radius: var(--ha-card-border-radius, 12px); padding: 16px;
      box-shadow: var(--ha-card-box-shadow, none); border: 1px solid var(--ha-card-border-color, var(--am-line)); }
    h2 { margin-top: 0; font-weight: 400; }
    h3 { font-weight: 500; margin: 16px 0 8px; }
    .actions { display: flex; gap: 8px; flex-wrap: wrap; }
    label.param { display: inline-grid; gap: 2px; margin: 0 12px 8px 0; }
  `]};var yt=(i,t)=>{window.customElements.get(i)||window.customElements.define(i,t)},te=()=>{yt("adaptive-modbus-card",it),yt("adaptive-modbus-card-editor",rt),yt("adaptive-modbus-panel",nt)};window.customElements.get("home-assistant")?te():window.customElements.whenDefined("home-assistant").then(te);window.customCards=window.customCards||[];window.customCards.some(i=>i.type==="adaptive-modbus-card")||window.customCards.push({type:"adaptive-modbus-card",name:"Adaptive Modbus",description:"Polling overview, registers with their intervals, clusters and charts of Adaptive Modbus",preview:!1,documentationURL:"https://github.com/adaptive-modbus/adaptive-modbus#the-card-and-the-panel"});
/*! Bundled license information:

@lit/reactive-element/css-tag.js:
  (**
   * @license
   * Copyright 2019 Google LLC
   * SPDX-License-Identifier: BSD-3-Clause
   *)

@lit/reactive-element/reactive-element.js:
lit-html/lit-html.js:
lit-element/lit-element.js:
  (**
   * @license
   * Copyright 2017 Google LLC
   * SPDX-License-Identifier: BSD-3-Clause
   *)

lit-html/is-server.js:
  (**
   * @license
   * Copyright 2022 Google LLC
   * SPDX-License-Identifier: BSD-3-Clause
   *)
*/
